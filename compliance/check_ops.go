package compliance

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/audit/ship"
)

func checkAuditRedundant(env *Env, _ Thresholds) ([]Finding, string) {
	working := 0
	var names []string
	for _, d := range env.Devices {
		if !d.Failed {
			working++
			names = append(names, "device "+d.Name)
		}
	}
	for _, s := range env.Streams {
		if s.State != ship.StateStopped && s.State != ship.StateStalled {
			working++
			names = append(names, "stream "+s.Name)
		}
	}
	if working >= 2 {
		return nil, ""
	}
	sev := Medium
	msg := fmt.Sprintf("only one audit sink records (%v): when it fails, every request fails closed and no copy of the log exists elsewhere", names)
	if working == 0 {
		sev = Critical
		msg = "no audit device or stream records"
		if !env.AuditRequired {
			msg += ": requests are served unaudited"
		}
	}
	note := ""
	if !env.StreamsKnown {
		note = " (audit streams are not wired on this server)"
	}
	return []Finding{{Severity: sev, Object: "audit devices and streams" + note, Message: msg,
		Fix: "Add a second file device on another disk (vigil audit enable file file_path=...), or an audit_stream to ClickHouse or Kafka in the server configuration."}}, ""
}

func checkAuditRequire(env *Env, _ Thresholds) ([]Finding, string) {
	if env.RequireAudit {
		return nil, ""
	}
	return []Finding{{Severity: High, Object: "audit_settings { require_audit = false }",
		Message: "requests are served even when no durable audit device records them: an audit failure or a missing device leaves changes unrecorded",
		Fix:     "Remove require_audit = false from the audit_settings block (the default is true) and declare a file device with fsync = \"always\"."}}, ""
}

func checkAuditDurable(env *Env, _ Thresholds) ([]Finding, string) {
	var out []Finding
	durable := 0
	for _, d := range env.Devices {
		if d.Durable {
			durable++
			continue
		}
		if d.Type == "file" {
			out = append(out, Finding{Severity: Medium, Object: "audit device " + d.Name,
				Message: fmt.Sprintf("fsync = %q: the device never acknowledges an entry, and a power loss can lose the entries it has not synced", d.Fsync),
				Fix:     "Set fsync = \"always\" on the device (group commit keeps its cost low)."})
		}
	}
	if durable == 0 && len(env.Devices) > 0 {
		out = append(out, Finding{Severity: High, Object: "audit devices",
			Message: "no durable audit device (a file device with fsync = \"always\"): no entry is known to be on disk when its request is answered",
			Fix:     "Declare a file audit device with fsync = \"always\" in the server configuration."})
	}
	return out, ""
}

func checkAuditDisk(env *Env, th Thresholds) ([]Finding, string) {
	var out []Finding
	states := append([]diskwatch.State(nil), env.Disk...)
	sort.Slice(states, func(i, j int) bool { return states[i].Name < states[j].Name })
	for _, s := range states {
		free := s.Usage.FreePercent()
		if s.Usage.Total == 0 && s.Level == diskwatch.LevelOK {
			continue // not checked yet
		}
		if s.Level < diskwatch.LevelWarn && free >= th.MinDiskFreePercent {
			continue
		}
		sev := Medium
		switch {
		case s.Level >= diskwatch.LevelFull:
			sev = Critical
		case s.Level >= diskwatch.LevelCritical:
			sev = High
		}
		out = append(out, Finding{Severity: sev, Object: fmt.Sprintf("audit device %q folder %s", s.Name, s.Dir),
			Message: fmt.Sprintf("%.1f%% free (%d bytes available), pressure level %s; threshold %.0f%% free", free, s.Usage.Avail, s.Level, th.MinDiskFreePercent),
			Fix:     "Grow the volume or move the device to a larger disk; check that streams are shipping so retention can delete old segments."})
	}
	return out, ""
}

func checkAuditShipLag(env *Env, th Thresholds) ([]Finding, string) {
	if !env.StreamsKnown {
		return nil, "audit streams are not wired on this server"
	}
	var out []Finding
	for _, s := range env.Streams {
		lag := time.Duration(s.LagSeconds * float64(time.Second))
		switch {
		case s.State == ship.StateStalled:
			out = append(out, Finding{Severity: Critical, Object: fmt.Sprintf("audit stream %q (%s)", s.Name, s.Type),
				Message: fmt.Sprintf("the stream is stalled: %s", firstNonEmpty(s.LastGap, s.LastError, "the local log does not continue the shipped chain")),
				Fix:     "Investigate the gap (vigil audit stream status), verify the local chain, and restart the stream from a verified cursor."})
		case lag > th.MaxShipLag.D() || s.State == ship.StateRetrying:
			sev := Medium
			if lag > 12*th.MaxShipLag.D() {
				sev = High
			}
			out = append(out, Finding{Severity: sev, Object: fmt.Sprintf("audit stream %q (%s)", s.Name, s.Type),
				Message: fmt.Sprintf("state %s, %d entries and %s behind (threshold %s)%s", s.State, s.LagEntries, lag.Round(time.Second), th.MaxShipLag.D(), suffix(s.LastError)),
				Fix:     "Restore connectivity to the sink; lagging entries stay on local disk until shipped, so watch the audit disk headroom meanwhile."})
		}
	}
	return out, ""
}

func checkAuditVerify(env *Env, th Thresholds) ([]Finding, string) {
	v := env.Verification
	fix := "Run vigil audit verify (POST sys/audit/verify) on every node, and schedule it at least every " + fmt.Sprint(int(th.VerifyMaxAge.D()/day)) + " days."
	if v == nil {
		return []Finding{{Severity: Medium, Object: "audit chain on node " + env.NodeID, Message: "the audit chain has never been verified on this node", Fix: fix}}, ""
	}
	if !v.OK {
		var bad []string
		for n, d := range v.Devices {
			if !d.OK {
				bad = append(bad, n+": "+firstNonEmpty(d.Failure, d.Summary))
			}
		}
		sort.Strings(bad)
		return []Finding{{Severity: Critical, Object: "audit chain on node " + v.NodeID,
			Message: fmt.Sprintf("the last verification (%s) FAILED: %v", v.Time.UTC().Format(time.RFC3339), bad),
			Fix:     "Treat as a possible tampering incident: preserve the files, compare with the streamed copies, and follow the incident procedure."}}, ""
	}
	if age := env.Now.Sub(v.Time); age > th.VerifyMaxAge.D() {
		return []Finding{{Severity: Medium, Object: "audit chain on node " + v.NodeID,
			Message: fmt.Sprintf("the last verification passed but ran %d days ago (%s)", int(age/day), v.Time.UTC().Format(time.RFC3339)), Fix: fix}}, ""
	}
	return nil, ""
}

func checkKVv1(env *Env, _ Thresholds) ([]Finding, string) {
	var out []Finding
	for _, m := range env.Mounts {
		if m.Type != "kv" || m.Options["version"] == "2" {
			continue
		}
		out = append(out, Finding{Severity: Low, Object: fmt.Sprintf("mount %s (kv, version %q)", m.Path, m.Options["version"]),
			Message: "KV version 1 keeps no version history: an overwrite or delete destroys the previous value, and secrets cannot carry custom_metadata tags",
			Fix:     fmt.Sprintf("Upgrade the mount: vigil secrets tune -options=version=2 %s (or migrate to a new kv-v2 mount).", m.Path)})
	}
	return out, ""
}

func checkSnapshot(env *Env, th Thresholds) ([]Finding, string) {
	fix := "Take snapshots on a schedule (vigil operator raft snapshot save FILE) and store them off the node."
	if env.LastSnapshot == nil {
		return []Finding{{Severity: High, Object: "raft storage", Message: "no snapshot has been taken through sys/storage/raft/snapshot", Fix: fix}}, ""
	}
	if age := env.Now.Sub(env.LastSnapshot.Time); age > th.SnapshotMaxAge.D() {
		return []Finding{{Severity: High, Object: "raft storage",
			Message: fmt.Sprintf("the last snapshot was taken %s ago (%s), over %s", age.Round(time.Minute), env.LastSnapshot.Time.UTC().Format(time.RFC3339), th.SnapshotMaxAge.D()), Fix: fix}}, ""
	}
	return nil, ""
}

func checkRestoreTest(env *Env, th Thresholds) ([]Finding, string) {
	fix := "Run vigil operator raft snapshot test: it restores a snapshot into a scratch store, verifies it and records the result."
	r := env.LastRestore
	switch {
	case r == nil:
		return []Finding{{Severity: Medium, Object: "raft storage", Message: "no snapshot restore test is recorded", Fix: fix}}, ""
	case !r.OK:
		return []Finding{{Severity: High, Object: "raft storage",
			Message: fmt.Sprintf("the last restore test (%s) failed: %s", r.Time.UTC().Format(time.RFC3339), r.Error), Fix: fix + " Investigate the failure first."}}, ""
	}
	if age := env.Now.Sub(r.Time); age > th.RestoreTestMaxAge.D() {
		return []Finding{{Severity: Low, Object: "raft storage",
			Message: fmt.Sprintf("the last restore test passed %d days ago (threshold %d days)", int(age/day), int(th.RestoreTestMaxAge.D()/day)), Fix: fix}}, ""
	}
	return nil, ""
}

func checkKeyHolders(env *Env, _ Thresholds) ([]Finding, string) {
	c := env.Seal
	if c == nil {
		return nil, "the server is not initialised"
	}
	shares, threshold := c.Held()
	holders := c.KeyHolders
	if holders == 0 {
		holders = shares
	}
	obj := fmt.Sprintf("seal: %d key holders, threshold %d", holders, threshold)
	if c.Recovery() {
		obj = fmt.Sprintf("%s seal: %d recovery key holders, threshold %d", c.Type, holders, threshold)
	}
	switch {
	case holders < threshold:
		return []Finding{{Severity: Critical, Object: obj, Message: "fewer key holders than the threshold: the server cannot be unsealed",
			Fix: "Rekey now, while the server is unsealed, to shares and a threshold the key holders can meet."}}, ""
	case threshold <= 1:
		return []Finding{{Severity: High, Object: obj, Message: "one key share unseals the server: a single person holds the whole unseal key, and losing it loses the data",
			Fix: "Rekey to at least 3 shares with a threshold of 2 or more, each share held by a different person."}}, ""
	case holders == threshold:
		return []Finding{{Severity: Medium, Object: obj, Message: "every key holder is needed to unseal: losing one share makes the server unrecoverable",
			Fix: "Rekey with more shares than the threshold (e.g. 5 shares, threshold 3)."}}, ""
	}
	return nil, ""
}

func checkRecoveryDoc(env *Env, th Thresholds) ([]Finding, string) {
	r := env.Recovery
	fix := "Record the procedure: vigil write sys/compliance/recovery-procedure document_url=... owner=... last_reviewed=YYYY-MM-DD"
	if r == nil || r.DocumentURL == "" {
		return []Finding{{Severity: Medium, Object: "unseal key recovery procedure", Message: "no recovery procedure is recorded (who holds the shares, how to unseal and rekey after a loss)", Fix: fix}}, ""
	}
	if r.LastReviewed.IsZero() {
		return []Finding{{Severity: Low, Object: "recovery procedure " + r.DocumentURL, Message: "the recovery procedure has no review date", Fix: fix}}, ""
	}
	if age := env.Now.Sub(r.LastReviewed); age > th.ReviewMaxAge.D() {
		return []Finding{{Severity: Low, Object: "recovery procedure " + r.DocumentURL,
			Message: fmt.Sprintf("last reviewed %s, %d days ago (threshold %d days)", r.LastReviewed.UTC().Format("2006-01-02"), int(age/day), int(th.ReviewMaxAge.D()/day)),
			Fix:     "Review the procedure with the key holders and update last_reviewed."}}, ""
	}
	return nil, ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func checkKeyDrill(env *Env, th Thresholds) ([]Finding, string) {
	e := env.KeyCustody
	if env.Seal == nil {
		return nil, "the server is not initialised"
	}
	if e == nil {
		return nil, "key-drill evidence was not gathered"
	}
	fix := "Run a key drill: vigil operator key-drill start, then each holder runs vigil operator key-drill submit with their share."
	kind := "unseal"
	if env.Seal.Recovery() {
		kind = "recovery"
	}
	if e.ShareSet == "" {
		return []Finding{{Severity: Medium, Object: kind + " key shares",
			Message: "no share commitments are recorded for the current key (it predates key custody), so no share can be proven",
			Fix:     "Rekey (vigil operator rekey -init -key-holders=...) to record commitments, then run a key drill."}}, ""
	}
	window := th.KeyDrillMaxAge.D()
	proven := e.ProvenWithin(window)
	if len(proven) >= e.Threshold {
		return nil, ""
	}
	names := make([]string, 0, len(proven))
	for _, p := range proven {
		n := fmt.Sprintf("%d", p.Number)
		if p.Holder != "" {
			n += " (" + p.Holder + ")"
		}
		names = append(names, n)
	}
	msg := fmt.Sprintf("only %d of the %d %s key shares needed were proven in a key drill in the last %d days", len(proven), e.Threshold, kind, int(window/day))
	if len(names) > 0 {
		msg += ": shares " + strings.Join(names, ", ")
	}
	msg += "; nobody has shown that the server can still be recovered"
	return []Finding{{Severity: High, Object: fmt.Sprintf("%s key shares (%d, threshold %d)", kind, e.Shares, e.Threshold), Message: msg, Fix: fix}}, ""
}
