package kv

// mergePatch applies patch to target with JSON merge patch semantics (RFC
// 7396): a null removes the member, an object merges recursively into an
// object (and replaces anything else, its nulls removed), any other value
// replaces the member. Neither argument is modified; the result shares no
// maps with them.
func mergePatch(target, patch map[string]any) map[string]any {
	out := make(map[string]any, len(target)+len(patch))
	for k, v := range target {
		out[k] = v
	}
	for k, pv := range patch {
		switch p := pv.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			t, _ := out[k].(map[string]any)
			out[k] = mergePatch(t, p)
		default:
			out[k] = pv
		}
	}
	return out
}
