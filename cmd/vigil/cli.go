package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/safetext"
)

// stdout and stderr are variables so tests can capture output.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
	stdin  io.Reader = os.Stdin
)

// clientFlags are the flags every client command accepts.
type clientFlags struct {
	address    string
	token      string
	format     string
	field      string
	clientCert string
	clientKey  string
	namespace  string
	// wrapTTL asks the server to wrap every response (-wrap-ttl), headers
	// are extra request headers (-header, on read/write/list/delete).
	wrapTTL string
	headers kvFlag
}

// newFlags returns a flag set with the common client flags.
func newFlags(name string, cf *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cf.address, "address", "", "server address (default $VIGIL_ADDR, $VAULT_ADDR or http://127.0.0.1:8200)")
	fs.StringVar(&cf.token, "token", "", "token (default $VIGIL_TOKEN, $VAULT_TOKEN or the token file)")
	fs.StringVar(&cf.format, "format", envOr("VIGIL_FORMAT", envOr("VAULT_FORMAT", "table")), "output format: table or json")
	fs.StringVar(&cf.field, "field", "", "print only this field's value")
	fs.StringVar(&cf.clientCert, "client-cert", envOr("VIGIL_CLIENT_CERT", os.Getenv("VAULT_CLIENT_CERT")), "PEM client certificate for TLS (cert auth)")
	fs.StringVar(&cf.clientKey, "client-key", envOr("VIGIL_CLIENT_KEY", os.Getenv("VAULT_CLIENT_KEY")), "PEM key of -client-cert")
	fs.StringVar(&cf.namespace, "namespace", envOr("VIGIL_NAMESPACE", os.Getenv("VAULT_NAMESPACE")), "namespace the request is made in (X-Vault-Namespace; default $VIGIL_NAMESPACE or $VAULT_NAMESPACE)")
	fs.StringVar(&cf.namespace, "ns", cf.namespace, "alias of -namespace")
	fs.StringVar(&cf.wrapTTL, "wrap-ttl", envOr("VIGIL_WRAP_TTL", os.Getenv("VAULT_WRAP_TTL")), "wrap the response in a single-use token valid this long (\"5m\"); vigil unwrap reads it")
	return fs
}

// parseFlags parses args allowing flags after positional arguments, as
// Vault's CLI does.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// "--" ends flag parsing.
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// tokenFile is where `vigil login` stores the token.
func tokenFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".vigil-token")
}

func storedToken() string {
	home, _ := os.UserHomeDir()
	for _, p := range []string{tokenFile(), filepath.Join(home, ".vault-token")} {
		if b, err := os.ReadFile(p); err == nil {
			if t := strings.TrimSpace(string(b)); t != "" {
				return t
			}
		}
	}
	return ""
}

// client builds a vault/api client from flags and the environment.
func (cf *clientFlags) client() (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	addr := cf.address
	if addr == "" {
		addr = envOr("VIGIL_ADDR", envOr("VAULT_ADDR", "http://127.0.0.1:8200"))
	}
	cfg.Address = addr
	tls := &vaultapi.TLSConfig{
		CACert:   envOr("VIGIL_CACERT", os.Getenv("VAULT_CACERT")),
		Insecure: envOr("VIGIL_SKIP_VERIFY", os.Getenv("VAULT_SKIP_VERIFY")) == "true" || envOr("VIGIL_SKIP_VERIFY", os.Getenv("VAULT_SKIP_VERIFY")) == "1",
	}
	tls.ClientCert, tls.ClientKey = cf.clientCert, cf.clientKey
	if tls.CACert != "" || tls.Insecure || tls.ClientCert != "" {
		if err := cfg.ConfigureTLS(tls); err != nil {
			return nil, err
		}
	}
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	tok := cf.token
	if tok == "" {
		tok = envOr("VIGIL_TOKEN", os.Getenv("VAULT_TOKEN"))
	}
	if tok == "" {
		tok = storedToken()
	}
	c.SetToken(tok)
	if cf.namespace != "" {
		c.SetNamespace(cf.namespace)
	} else {
		c.ClearNamespace()
	}
	if ttl := cf.wrapTTL; ttl != "" {
		c.SetWrappingLookupFunc(func(string, string) string { return ttl })
	}
	for k, v := range cf.headers {
		c.AddHeader(k, v)
	}
	return c, nil
}

// headerFlag adds -header K=V (repeatable) to fs.
func (cf *clientFlags) headerFlag(fs *flag.FlagSet) {
	fs.Var(&cf.headers, "header", "a request header K=V, e.g. X-Vigil-Reason=INC-42 (repeatable)")
}

// fail prints an error the way Vault's CLI does and returns exit code 2.
func fail(format string, args ...any) int {
	fmt.Fprintf(stderr, "Error: "+format+"\n", args...)
	return 2
}

// apiError renders a vault/api error: the server's messages when present.
func apiError(op string, err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		msgs := re.Errors
		if len(msgs) == 0 {
			msgs = []string{fmt.Sprintf("HTTP %d", re.StatusCode)}
		}
		fmt.Fprintf(stderr, "Error %s: Code: %d. Errors:\n\n", op, re.StatusCode)
		for _, m := range msgs {
			fmt.Fprintf(stderr, "* %s\n", safetext.Escape(m))
		}
		return 2
	}
	return fail("%s: %v", op, err)
}

// output prints v (a map or any JSON-able value) in the chosen format.
func (cf *clientFlags) output(v any) int {
	if cf.field != "" {
		m, ok := v.(map[string]any)
		if !ok {
			return fail("-field requires a key/value result")
		}
		val, ok := m[cf.field]
		if !ok {
			return fail("field %q not present in the result", cf.field)
		}
		switch x := val.(type) {
		case string:
			fmt.Fprintln(stdout, x)
		default:
			b, _ := json.Marshal(x)
			fmt.Fprintln(stdout, string(b))
		}
		return 0
	}
	switch cf.format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fail("encode: %v", err)
		}
		fmt.Fprintln(stdout, string(b))
	case "table", "":
		printTable(v)
	default:
		return fail("unknown -format %q (want table or json)", cf.format)
	}
	return 0
}

func printTable(v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		tw := tabwriter.NewWriter(stdout, 0, 4, 4, ' ', 0)
		fmt.Fprintln(tw, "Key\tValue")
		fmt.Fprintln(tw, "---\t-----")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\n", safetext.Escape(k), safetext.Escape(cell(x[k])))
		}
		_ = tw.Flush()
	case []string:
		fmt.Fprintln(stdout, "Keys\n----")
		for _, s := range x {
			fmt.Fprintln(stdout, safetext.Escape(s))
		}
	case [][]string:
		tw := tabwriter.NewWriter(stdout, 0, 4, 4, ' ', 0)
		for _, row := range x {
			cells := make([]string, len(row))
			for i, c := range row {
				cells[i] = safetext.Escape(c)
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		_ = tw.Flush()
	default:
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(stdout, string(safetext.EscapeJSON(b)))
	}
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "n/a"
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cell(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case []string:
		return "[" + strings.Join(x, " ") + "]"
	case map[string]any, map[string]string:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// parseKVArgs turns "k=v" arguments into a map. A value "@file" reads the
// file; "-" as the only argument reads a JSON object from stdin.
func parseKVArgs(args []string) (map[string]any, error) {
	out := map[string]any{}
	if len(args) == 1 && args[0] == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("stdin must hold a JSON object: %w", err)
		}
		return out, nil
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("invalid key/value pair %q: expected key=value", a)
		}
		switch {
		case strings.HasPrefix(v, "@"):
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, err
			}
			out[k] = string(b)
		case v == "-":
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, err
			}
			out[k] = strings.TrimRight(string(b), "\n")
		default:
			out[k] = v
		}
	}
	return out, nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
