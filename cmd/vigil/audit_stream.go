package main

// `vigil audit stream status [NAME]`: the sys/audit-stream API.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

func init() {
	register(&command{name: "audit stream status", synopsis: "Show the audit streams (Kafka, ClickHouse): cursor, lag, last error", run: runAuditStreamStatus})
}

// runAuditStreamStatus is `vigil audit stream status [NAME]`.
func runAuditStreamStatus(args []string) int {
	var cf clientFlags
	fs := newFlags("audit stream status", &cf)
	setUsage(fs, "audit stream status [options] [NAME]", `
Shows every audit stream declared in the server configuration (audit_stream
"kafka" / "clickhouse" blocks), or the one named NAME: its state, the cursor
(the last line of the local audit log the sink acknowledged), the local
head, the lag in entries and seconds, and the last error. A sink outage only
grows the lag: requests are never blocked by it.

    $ vigil audit stream status
    $ vigil audit stream status -format=json siem`)
	pos, code, ok := cf.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	path := "sys/audit-stream"
	if len(pos) == 1 {
		path += "/" + pos[0]
	}
	s, err := client.Logical().Read(path)
	if err != nil {
		return apiError("reading audit stream status", err)
	}
	if s == nil {
		return fail("no audit stream status at %s", path)
	}
	if len(pos) == 1 {
		if cf.field != "" || !cf.isTable() {
			return cf.output(s.Data)
		}
		return cf.printMap(s.Data)
	}
	streams, _ := s.Data["streams"].(map[string]any)
	if !cf.isTable() {
		return printJSON(streams)
	}
	if len(streams) == 0 {
		fmt.Fprintln(stdout, "No audit streams are configured.")
		return 0
	}
	names := make([]string, 0, len(streams))
	for n := range streams {
		names = append(names, n)
	}
	sort.Strings(names)
	rows := [][]string{{"Name", "Type", "State", "Cursor", "Head", "Lag", "Lag (s)", "Target", "Last error"},
		{"----", "----", "-----", "------", "----", "---", "-------", "------", "----------"}}
	for _, n := range names {
		st, _ := streams[n].(map[string]any)
		cur, _ := st["cursor"].(map[string]any)
		lastErr := ""
		if up, _ := st["up"].(bool); !up {
			lastErr, _ = st["last_error"].(string)
		}
		if len(lastErr) > 80 {
			lastErr = lastErr[:77] + "..."
		}
		lag := str(st["lag_seconds"])
		if x, err := strconv.ParseFloat(lag, 64); err == nil {
			lag = strconv.FormatFloat(x, 'f', 1, 64)
		}
		rows = append(rows, []string{n, str(st["type"]), str(st["state"]), str(cur["seq"]), str(st["head_seq"]),
			str(st["lag_entries"]), lag, str(st["target"]), strings.ReplaceAll(lastErr, "\n", " ")})
	}
	printTable(rows)
	return 0
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
