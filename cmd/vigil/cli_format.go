package main

// Vault-compatible output for the client commands: the "Key / Value" table
// with humanised durations, "== Title ==" headers, raw -field values, lists
// of keys, and argument-count checks. Everything writes to the stdout and
// stderr package variables so tests can capture it.

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vigilsec/vigil/core/safetext"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"golang.org/x/term"
)

// parseCmd parses a command's flags. ok is false when the command must
// return code at once: 0 after -h, 1 for a bad flag (the flag package has
// already printed the error and usage to stderr).
func parseCmd(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	pos, err := parseFlags(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, 0, false
	case err != nil:
		return nil, 1, false
	}
	return pos, 0, true
}

// setUsage makes -h print Vault-style help: the usage line, a description,
// then the flags.
func setUsage(fs *flag.FlagSet, usage, help string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: vigil %s\n\n", usage)
		if help != "" {
			fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(help))
		}
		fmt.Fprintln(w, "Options:")
		fs.PrintDefaults()
	}
}

// usageError prints a usage error and returns exit code 1.
func usageError(format string, args ...any) int {
	fmt.Fprintf(stderr, format+"\n", args...)
	return 1
}

// wantArgs checks the number of positional arguments as Vault's CLI does.
// It returns 0 when the count is in [min, max] (max < 0: unbounded).
func wantArgs(args []string, min, max int) int {
	switch {
	case len(args) < min:
		if min == max {
			return usageError("Not enough arguments (expected %d, got %d)", min, len(args))
		}
		return usageError("Not enough arguments (expected at least %d, got %d)", min, len(args))
	case max >= 0 && len(args) > max:
		if min == max {
			return usageError("Too many arguments (expected %d, got %d)", max, len(args))
		}
		return usageError("Too many arguments (expected at most %d, got %d)", max, len(args))
	}
	return 0
}

// checkFormat validates -format before any request is made.
func (cf *clientFlags) checkFormat() int {
	switch cf.format {
	case "", "table", "json":
		return 0
	}
	return usageError("Invalid output format: %s (want table or json)", cf.format)
}

// parse is a client command's preamble: parse the flags, check the number
// of positional arguments (min..max, max < 0 for no limit) and the output
// format. When ok is false the command returns code.
func (cf *clientFlags) parse(fs *flag.FlagSet, args []string, min, max int) (pos []string, code int, ok bool) {
	if pos, code, ok = parseCmd(fs, args); !ok {
		return nil, code, false
	}
	if c := wantArgs(pos, min, max); c != 0 {
		return nil, c, false
	}
	if c := cf.checkFormat(); c != 0 {
		return nil, c, false
	}
	return pos, 0, true
}

func (cf *clientFlags) isTable() bool { return cf.format == "" || cf.format == "table" }

// success prints a "Success! ..." line; like Vault, only in table format.
func (cf *clientFlags) success(format string, args ...any) int {
	if cf.isTable() {
		fmt.Fprintf(stdout, "Success! "+format+"\n", args...)
	}
	return 0
}

// stringSliceFlag is a repeatable string flag ("-policy=a -policy=b").
type stringSliceFlag []string

func (s *stringSliceFlag) String() string { return strings.Join(*s, ",") }
func (s *stringSliceFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// kvFlag is a repeatable key=value flag ("-metadata k=v", "-options k=v").
type kvFlag map[string]string

func (m *kvFlag) String() string {
	if m == nil || *m == nil {
		return ""
	}
	parts := make([]string, 0, len(*m))
	for k, v := range *m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (m *kvFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("expected key=value, got %q", v)
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = val
	return nil
}

// durationFlag accepts Vault's duration syntax: "30m", "1h", "7d" or plain
// seconds ("3600").
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return err
	}
	f.d, f.set = d, true
	return nil
}

// parseDuration parses "90", "90s", "5m", "1h30m", "7d".
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	if strings.HasSuffix(v, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(v, "d"), 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", v)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", v)
	}
	return d, nil
}

// humanDuration renders d as Vault does: "768h", "1h30m", "45s".
func humanDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// humanDurationValue converts a number of seconds (int, json.Number or a
// numeric string) to a human duration; other values are returned as is.
func humanDurationValue(v any) any {
	var secs int64
	switch x := v.(type) {
	case int:
		secs = int64(x)
	case int64:
		secs = x
	case float64:
		secs = int64(x)
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return v
		}
		secs = n
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return v
		}
		secs = n
	default:
		return v
	}
	return humanDuration(time.Duration(secs) * time.Second)
}

// looksLikeDuration reports whether a field holds a TTL in seconds.
func looksLikeDuration(k string) bool {
	return k == "period" || strings.HasSuffix(k, "_period") ||
		k == "ttl" || strings.HasSuffix(k, "_ttl") ||
		strings.HasSuffix(k, "duration") || strings.HasSuffix(k, "_interval") ||
		strings.HasSuffix(k, "version_after")
}

// fmtValue renders one table cell as Vault does (%v; nil is "<nil>", an
// empty string "n/a").
func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case string:
		if x == "" {
			return "n/a"
		}
		return x
	}
	return fmt.Sprintf("%v", v)
}

// kvRow is one row of a Key/Value table.
type kvRow struct{ k, v string }

func writeKVTable(w io.Writer, rows []kvRow) {
	if len(rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "Key\tValue")
	fmt.Fprintln(tw, "---\t-----")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", safetext.Escape(r.k), safetext.Escape(r.v))
	}
	_ = tw.Flush()
}

// mapRows turns a data map into sorted table rows, humanising durations.
func mapRows(m map[string]any) []kvRow {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([]kvRow, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		if looksLikeDuration(k) {
			v = humanDurationValue(v)
		}
		rows = append(rows, kvRow{k, fmtValue(v)})
	}
	return rows
}

// printMap prints a map as a Key/Value table (or JSON).
func (cf *clientFlags) printMap(m map[string]any) int {
	if !cf.isTable() {
		return printJSON(m)
	}
	writeKVTable(stdout, mapRows(m))
	return 0
}

// printJSON prints v as indented JSON, with bidirectional controls and
// other invisible characters as \u escapes (the same value, displayed as
// it is).
func printJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fail("encode: %v", err)
	}
	fmt.Fprintln(stdout, string(safetext.EscapeJSON(b)))
	return 0
}

// printWarnings prints a response's warnings to stderr, as Vault does.
func printWarnings(s *vaultapi.Secret) {
	if s == nil || len(s.Warnings) == 0 {
		return
	}
	fmt.Fprintln(stderr, "WARNING! The following warnings were returned from Vigil:")
	fmt.Fprintln(stderr)
	for _, w := range s.Warnings {
		fmt.Fprintf(stderr, "  * %s\n\n", w)
	}
}

// secretRows are the rows of Vault's table for a secret: lease, auth, data.
func secretRows(s *vaultapi.Secret) []kvRow {
	var rows []kvRow
	if w := s.WrapInfo; w != nil {
		// A wrapped response: its wrap info only, as Vault's CLI shows it.
		rows = append(rows,
			kvRow{"wrapping_token:", w.Token},
			kvRow{"wrapping_accessor:", w.Accessor},
			kvRow{"wrapping_token_ttl:", humanDuration(time.Duration(w.TTL) * time.Second)},
			kvRow{"wrapping_token_creation_time:", w.CreationTime.String()},
			kvRow{"wrapping_token_creation_path:", w.CreationPath})
		if w.WrappedAccessor != "" {
			rows = append(rows, kvRow{"wrapped_accessor:", w.WrappedAccessor})
		}
		return rows
	}
	if s.LeaseDuration > 0 {
		if s.LeaseID != "" {
			rows = append(rows,
				kvRow{"lease_id", s.LeaseID},
				kvRow{"lease_duration", humanDuration(time.Duration(s.LeaseDuration) * time.Second)},
				kvRow{"lease_renewable", strconv.FormatBool(s.Renewable)})
		} else {
			rows = append(rows, kvRow{"refresh_interval", humanDuration(time.Duration(s.LeaseDuration) * time.Second)})
		}
	}
	if a := s.Auth; a != nil {
		dur := "∞"
		if a.LeaseDuration > 0 {
			dur = humanDuration(time.Duration(a.LeaseDuration) * time.Second)
		}
		rows = append(rows,
			kvRow{"token", a.ClientToken},
			kvRow{"token_accessor", a.Accessor},
			kvRow{"token_duration", dur},
			kvRow{"token_renewable", strconv.FormatBool(a.Renewable)},
			kvRow{"token_policies", fmt.Sprintf("%q", nonNil(a.TokenPolicies))},
			kvRow{"identity_policies", fmt.Sprintf("%q", nonNil(a.IdentityPolicies))},
			kvRow{"policies", fmt.Sprintf("%q", nonNil(a.Policies))})
		metaKeys := make([]string, 0, len(a.Metadata))
		for k := range a.Metadata {
			metaKeys = append(metaKeys, k)
		}
		sort.Strings(metaKeys)
		for _, k := range metaKeys {
			rows = append(rows, kvRow{"token_meta_" + k, a.Metadata[k]})
		}
	}
	return append(rows, mapRows(s.Data)...)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// printSecret prints a secret as Vault's CLI does: -field as a raw value,
// -format=json as the whole response, otherwise warnings then a Key/Value
// table of the lease, auth and data fields.
func (cf *clientFlags) printSecret(s *vaultapi.Secret) int {
	if s == nil {
		return 0
	}
	if cf.field != "" {
		return cf.printField(secretField(s, cf.field))
	}
	if !cf.isTable() {
		return printJSON(s)
	}
	printWarnings(s)
	writeKVTable(stdout, secretRows(s))
	return 0
}

// secretField looks a -field name up in a secret the way Vault does: the
// lease and auth pseudo-fields first, then the data.
func secretField(s *vaultapi.Secret, field string) (string, any) {
	if w := s.WrapInfo; w != nil {
		switch field {
		case "wrapping_token":
			return field, w.Token
		case "wrapping_accessor":
			return field, w.Accessor
		case "wrapping_token_ttl":
			return field, w.TTL
		case "wrapping_token_creation_time":
			return field, w.CreationTime.String()
		case "wrapping_token_creation_path":
			return field, w.CreationPath
		case "wrapped_accessor":
			return field, w.WrappedAccessor
		}
	}
	switch field {
	case "lease_id":
		return field, s.LeaseID
	case "lease_duration", "refresh_interval":
		return field, s.LeaseDuration
	case "lease_renewable":
		return field, s.Renewable
	}
	if a := s.Auth; a != nil {
		switch field {
		case "token":
			return field, a.ClientToken
		case "token_accessor":
			return field, a.Accessor
		case "token_duration":
			return field, a.LeaseDuration
		case "token_renewable":
			return field, a.Renewable
		case "token_policies":
			return field, a.TokenPolicies
		case "identity_policies":
			return field, a.IdentityPolicies
		case "policies":
			return field, a.Policies
		}
	}
	return field, s.Data[field]
}

// printField prints one field's raw value. Like Vault, there is no trailing
// newline unless stdout is a terminal, so `vigil kv get -field=k p > file`
// stores exactly the value. A missing field is a usage error (exit 1).
func (cf *clientFlags) printField(name string, val any) int {
	if val == nil {
		return usageError("Field %q not present in secret", name)
	}
	var out string
	if cf.isTable() {
		out = fmt.Sprintf("%v", val)
	} else {
		b, err := json.MarshalIndent(val, "", "  ")
		if err != nil {
			return fail("encode: %v", err)
		}
		out = string(b)
	}
	if isTerminal(stdout) {
		out += "\n"
	}
	fmt.Fprint(stdout, out)
	return 0
}

// printKeys prints the "keys" of a LIST response as Vault does.
func (cf *clientFlags) printKeys(s *vaultapi.Secret) int {
	if !cf.isTable() {
		if cf.field != "" {
			return cf.printField(secretField(s, cf.field))
		}
		return printJSON(s.Data["keys"])
	}
	if cf.field != "" {
		return cf.printField(secretField(s, cf.field))
	}
	printWarnings(s)
	var keys []string
	if list, ok := s.Data["keys"].([]any); ok {
		for _, k := range list {
			keys = append(keys, fmt.Sprint(k))
		}
	}
	sort.Strings(keys)
	fmt.Fprintln(stdout, "Keys")
	fmt.Fprintln(stdout, "----")
	for _, k := range keys {
		fmt.Fprintln(stdout, k)
	}
	return 0
}

// padEqualSigns centres a header in '=' signs to totalLen, as Vault does.
func padEqualSigns(header string, totalLen int) string {
	n := totalLen - (len(header) + 2)
	if n <= 0 {
		n = 4
	}
	if n%2 != 0 {
		n++
	}
	return strings.Repeat("=", n/2) + " " + header + " " + strings.Repeat("=", n/2)
}

// headerForMap is the "====== Title ======" line above a Key/Value table.
func headerForMap(title string, m map[string]any) string {
	maxKey := 0
	for k := range m {
		maxKey = max(maxKey, len(k))
	}
	return padEqualSigns(title, maxKey+4+5)
}

// printPathHeader prints "== Secret Path ==" and the path, as Vault does.
func printPathHeader(title, path string) {
	fmt.Fprintln(stdout, padEqualSigns(title, len(path)))
	fmt.Fprintln(stdout, path)
	fmt.Fprintln(stdout)
}

// isTerminal reports whether w is an interactive terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// readSecretInput reads a secret value (token, unseal key, password) from
// stdin: hidden behind a prompt when stdin is a terminal, otherwise the
// first line of the input.
func readSecretInput(prompt string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1<<20)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// registerGroup registers a command group ("kv", "operator raft"): run
// alone, or with an unknown subcommand, it lists the group's subcommands
// and exits 1, as a usage error.
func registerGroup(name, synopsis string) {
	register(&command{name: name, synopsis: synopsis, run: func(args []string) int {
		help := len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
		if len(args) > 0 && !help {
			fmt.Fprintf(stderr, "Unknown command: %s %s\n\n", name, strings.Join(args, " "))
		}
		fmt.Fprintf(stderr, "Usage: vigil %s <subcommand> [options] [args]\n\n  %s\n\nSubcommands:\n", name, synopsis)
		var subs []string
		for n := range commands {
			if strings.HasPrefix(n, name+" ") {
				subs = append(subs, n)
			}
		}
		sort.Strings(subs)
		for _, n := range subs {
			fmt.Fprintf(stderr, "    %-24s %s\n", strings.TrimPrefix(n, name+" "), commands[n].synopsis)
		}
		if help {
			return 0
		}
		return 1
	}})
}

// writeTable prints a column table with a dashed underline under the
// header, as Vault's list commands do; empty cells print "n/a".
func writeTable(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(stdout, 0, 4, 4, ' ', 0)
	under := make([]string, len(header))
	for i, h := range header {
		under[i] = strings.Repeat("-", len(h))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	fmt.Fprintln(tw, strings.Join(under, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			if c == "" {
				c = "n/a"
			}
			cells[i] = safetext.Escape(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
}
