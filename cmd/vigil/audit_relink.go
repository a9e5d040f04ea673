package main

// `vigil audit relink DEVICE -reason TEXT`: acknowledge a refused audit log.

import (
	"fmt"
	"strings"
)

func init() {
	register(&command{name: "audit relink", synopsis: "Acknowledge a refused audit log: set it aside and start a new chain linked to it", run: runAuditRelink})
}

// runAuditRelink is `vigil audit relink [options] DEVICE`.
func runAuditRelink(args []string) int {
	var cf clientFlags
	fs := newFlags("audit relink", &cf)
	setUsage(fs, "audit relink -reason TEXT [options] DEVICE", `
A file audit device whose log does not match its trusted checkpoints (an
edited, truncated, padded or rolled-back log) is refused at start: the
server names the kind of tampering, sets the metric
vigil_audit_chain_refused, and writes nothing to it. After investigating,
an operator with sudo on sys/audit acknowledges it here: the old files are
moved, untouched, into a folder next to them, and a new chain starts whose
first line records the old chain's last trusted checkpoint, what was
found, the reason and who acknowledged it. The acknowledgement is the new
chain's first entry. Nothing is ever replaced silently.

    $ vigil audit relink file -reason "INC-4711: disk restored from an old backup"`)
	reason := fs.String("reason", "", "why the old chain is set aside (required; recorded in the new chain)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError("-reason is required")
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	dev := strings.Trim(pos[0], "/")
	s, err := client.Logical().Write("sys/audit/relink/"+dev, map[string]any{"reason": *reason})
	if err != nil {
		return apiError("relinking", err)
	}
	if s == nil {
		return fail("no answer")
	}
	if !cf.isTable() {
		return cf.output(s.Data)
	}
	fmt.Fprintf(stdout, "Relinked audit device %s: a new chain starts at seq %v; the old files are in %v (the old chain's last trusted checkpoint: seq %v)\n",
		dev, s.Data["chain_start"], s.Data["moved_to"], s.Data["previous_checkpoint_seq"])
	return 0
}
