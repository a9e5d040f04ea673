package main

import (
	"fmt"
	"strings"
)

func init() {
	register(&command{name: "operator key-drill", synopsis: "Key-custody drills: prove each unseal/recovery share is still held", run: runOperatorKeyDrill})
}

// runOperatorKeyDrill is `vigil operator key-drill start|submit|status|finish|history`.
func runOperatorKeyDrill(args []string) int {
	var cf clientFlags
	fs := newFlags("operator key-drill", &cf)
	setUsage(fs, "operator key-drill start|submit|status|finish|history [options] [KEY]", `
A key-custody drill shows, before the day the shares are needed, that
their holders still have them. An operator starts a drill; each holder
submits their share (read from stdin without KEY). The server checks the
share against the public commitment recorded for it at init or rekey —
one share at a time, never reconstructing the key — and records in the
audit trail which share (and holder) proved possession, and when. The
compliance check seal.key-drill fails when fewer than the threshold of
shares were proven in the last 90 days.

    $ vigil operator key-drill start -ttl=72h       # needs a sudo token
    $ vigil operator key-drill submit               # each holder; no token
    $ vigil operator key-drill status
    $ vigil operator key-drill finish
    $ vigil operator key-drill history`)
	ttl := fs.String("ttl", "", "how long the drill stays open (default 7 days)")
	pos, code, ok := cf.parse(fs, args, 1, 2)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	var res map[string]any
	switch pos[0] {
	case "start":
		body := map[string]any{}
		if *ttl != "" {
			body["ttl"] = *ttl
		}
		s, err := client.Logical().Write("sys/key-drill/start", body)
		if err != nil {
			return apiError("starting the key drill", err)
		}
		res = s.Data
		if cf.isTable() {
			fmt.Fprintf(stdout, "Key drill %v started: %v shares, threshold %v, open until %v.\nEach holder now runs: vigil operator key-drill submit\n", res["id"], res["shares"], res["threshold"], res["expires_at"])
			return 0
		}
	case "submit":
		key := ""
		if len(pos) == 2 && pos[1] != "-" {
			key = pos[1]
		} else if key, err = readSecretInput("Key share (will be hidden): "); err != nil {
			return fail("reading key share: %v", err)
		}
		s, err := client.Logical().Write("sys/key-drill/submit", map[string]any{"key": strings.TrimSpace(key)})
		if err != nil {
			return apiError("submitting the share", err)
		}
		res = s.Data
		if cf.isTable() {
			who := fmt.Sprintf("share %v", res["share_number"])
			if h, ok := res["share_holder"].(string); ok && h != "" {
				who += " (" + h + ")"
			}
			fmt.Fprintf(stdout, "Success! %s proved possession. %v of %v shares proven in this drill (threshold %v).\n", who, res["proven"], res["shares"], res["threshold"])
			return 0
		}
	case "status", "finish", "history":
		path := map[string]string{"status": "sys/key-drill", "finish": "sys/key-drill/finish", "history": "sys/key-drill/history"}[pos[0]]
		var err error
		if pos[0] == "finish" {
			s, werr := client.Logical().Write(path, nil)
			if werr == nil {
				res = s.Data
			}
			err = werr
		} else {
			s, rerr := client.Logical().Read(path)
			if rerr == nil && s == nil {
				return fail("no key drill is open")
			}
			if rerr == nil {
				res = s.Data
			}
			err = rerr
		}
		if err != nil {
			return apiError(pos[0]+" key drill", err)
		}
	default:
		return fail("unknown key-drill action %q: want start, submit, status, finish or history", pos[0])
	}
	return cf.printMap(res)
}
