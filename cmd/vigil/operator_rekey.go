package main

import (
	"fmt"
	"strings"
)

func init() {
	register(&command{name: "operator rekey", synopsis: "Replace the unseal or recovery key with new shares", run: runOperatorRekey})
}

// rekeyBody is sys/rekey*/init's and update's answer (Vault's fields,
// key_holders and the share that was just given).
type rekeyBody struct {
	Nonce       string   `json:"nonce"`
	Started     bool     `json:"started"`
	T           int      `json:"t"`
	N           int      `json:"n"`
	Progress    int      `json:"progress"`
	Required    int      `json:"required"`
	Complete    bool     `json:"complete"`
	Keys        []string `json:"keys"`
	KeysB64     []string `json:"keys_base64"`
	KeyHolders  []string `json:"key_holders"`
	ShareID     bool     `json:"share_identified"`
	ShareNumber int      `json:"share_number"`
	ShareHolder string   `json:"share_holder"`
}

// runOperatorRekey is `vigil operator rekey`, as Vault's (PGP-free).
func runOperatorRekey(args []string) int {
	var cf clientFlags
	fs := newFlags("operator rekey", &cf)
	setUsage(fs, "operator rekey [options] [KEY]", `
Generates a new unseal key (Shamir seal) or recovery key (auto seal,
-target=recovery) and splits it into new shares, once a threshold of the
current shares has been given. Start with -init, then each holder runs the
command with their current share (read from stdin without KEY). Every step
is audited with the share's number and holder — never its value.

    $ vigil operator rekey -init -key-shares=5 -key-threshold=3 -key-holders="a,b,c,d,e"
    $ vigil operator rekey -nonce=<nonce>          # once per current holder
    $ vigil operator rekey -status
    $ vigil operator rekey -cancel`)
	initF := fs.Bool("init", false, "start a rekey")
	cancel := fs.Bool("cancel", false, "cancel the rekey in progress")
	status := fs.Bool("status", false, "print the rekey's progress")
	nonce := fs.String("nonce", "", "the rekey's nonce (from -init or -status)")
	shares := fs.Int("key-shares", 5, "number of new shares")
	threshold := fs.Int("key-threshold", 3, "new threshold")
	target := fs.String("target", "barrier", `"barrier" (unseal key) or "recovery" (recovery key)`)
	var holders stringSliceFlag
	fs.Var(&holders, "key-holders", "comma-separated label of each new share's holder, in order")
	pos, code, ok := cf.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	base := "/v1/sys/rekey"
	switch *target {
	case "barrier":
	case "recovery":
		base = "/v1/sys/rekey-recovery-key"
	default:
		return fail("-target must be barrier or recovery, got %q", *target)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	var res rekeyBody
	switch {
	case *cancel:
		if err := rawJSONRequest(client, "DELETE", base+"/init", nil, nil); err != nil {
			return apiError("canceling rekey", err)
		}
		fmt.Fprintln(stdout, "Success! Canceled rekeying (if it was started)")
		return 0
	case *status:
		if err := rawJSONRequest(client, "GET", base+"/init", nil, &res); err != nil {
			return apiError("getting rekey status", err)
		}
	case *initF:
		body := map[string]any{"secret_shares": *shares, "secret_threshold": *threshold}
		if h := splitLabels(holders); len(h) > 0 {
			body["key_holders"] = h
		}
		if err := rawJSONRequest(client, "PUT", base+"/init", body, &res); err != nil {
			return apiError("initializing rekey", err)
		}
	default:
		key := ""
		if len(pos) == 1 && pos[0] != "-" {
			key = pos[0]
		} else if key, err = readSecretInput("Rekey operation nonce: " + *nonce + "\nKey (will be hidden): "); err != nil {
			return fail("reading key: %v", err)
		}
		n := *nonce
		if n == "" {
			var st rekeyBody
			if err := rawJSONRequest(client, "GET", base+"/init", nil, &st); err != nil {
				return apiError("getting rekey status", err)
			}
			n = st.Nonce
		}
		if err := rawJSONRequest(client, "PUT", base+"/update", map[string]any{"key": strings.TrimSpace(key), "nonce": n}, &res); err != nil {
			return apiError("posting unseal key", err)
		}
	}
	if !cf.isTable() {
		return printJSON(res)
	}
	if res.Complete {
		for i, k := range res.KeysB64 {
			label := ""
			if i < len(res.KeyHolders) {
				label = " (" + res.KeyHolders[i] + ")"
			}
			fmt.Fprintf(stdout, "Key %d%s: %s\n", i+1, label, k)
		}
		fmt.Fprintf(stdout, "\nOperation nonce: %s\n\nVigil rekeyed with %d key shares and a key threshold of %d. The old shares\nno longer work; distribute the new ones and run a key drill.\n", res.Nonce, len(res.KeysB64), *threshold)
		return 0
	}
	rows := []kvRow{{"Nonce", res.Nonce}, {"Started", fmt.Sprint(res.Started)},
		{"Rekey Progress", fmt.Sprintf("%d/%d", res.Progress, res.Required)}, {"New Shares", fmt.Sprint(res.N)}, {"New Threshold", fmt.Sprint(res.T)}}
	if res.ShareNumber > 0 || res.ShareID {
		rows = append(rows, kvRow{"Share Given", describeShare(res.ShareID, res.ShareNumber, res.ShareHolder)})
	}
	writeKVTable(stdout, rows)
	return 0
}

// describeShare renders the server's description of a supplied share.
func describeShare(identified bool, number int, holder string) string {
	if !identified {
		return "accepted (no share commitments recorded)"
	}
	s := fmt.Sprintf("share %d", number)
	if holder != "" {
		s += " (" + holder + ")"
	}
	return s
}
