package main

// The generic logical commands: `vigil read|write|list|delete PATH`, which
// talk to any API path (sys/, auth/, any engine) as Vault's do.

import (
	"fmt"
	"io"
	"mime"
)

func init() {
	register(&command{name: "read", synopsis: "Read data from any API path", run: runRead})
	register(&command{name: "write", synopsis: "Write data to any API path", run: runWrite})
	register(&command{name: "list", synopsis: "List the keys under any API path", run: runList})
	register(&command{name: "delete", synopsis: "Delete data at any API path", run: runDelete})
}

// stringLists turns K=V arguments into query parameters.
func stringLists(args []string) (map[string][]string, error) {
	data, err := parseKVArgs(args)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(data))
	for k, v := range data {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				out[k] = append(out[k], fmt.Sprint(e))
			}
		default:
			out[k] = append(out[k], fmt.Sprint(x))
		}
	}
	return out, nil
}

// runRead is `vigil read PATH [K=V...]` (K=V become query parameters).
func runRead(args []string) int {
	var cf clientFlags
	fs := newFlags("read", &cf)
	cf.headerFlag(fs)
	setUsage(fs, "read [options] PATH [K=V...]", `
Reads data from PATH. K=V pairs are sent as query parameters. A response
that is not JSON (a PEM certificate, say) is printed as is.

    $ vigil read secret/data/foo
    $ vigil read -field=keys sys/init`)
	pos, code, ok := cf.parse(fs, args, 1, -1)
	if !ok {
		return code
	}
	params, err := stringLists(pos[1:])
	if err != nil {
		return usageError("Failed to parse K=V data: %v", err)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	path := sanitizePath(pos[0])
	resp, err := client.Logical().ReadRawWithData(path, params)
	if err == nil && resp != nil && resp.StatusCode < 300 {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" {
			defer resp.Body.Close()
			if _, err := io.Copy(stdout, resp.Body); err != nil {
				return fail("reading %s: %v", path, err)
			}
			return 0
		}
	}
	s, err := client.Logical().ParseRawResponseAndCloseBody(resp, err)
	if err != nil {
		return apiError("reading "+path, err)
	}
	if s == nil {
		fmt.Fprintf(stderr, "No value found at %s\n", path)
		return 2
	}
	return cf.printSecret(s)
}

// runWrite is `vigil write [-force] PATH [K=V... | K=@FILE | -]`.
func runWrite(args []string) int {
	var cf clientFlags
	fs := newFlags("write", &cf)
	cf.headerFlag(fs)
	setUsage(fs, "write [options] PATH [K=V... | K=@FILE | K=- | -]", `
Writes data to PATH. Values may come from a file (K=@FILE) or stdin (K=-);
"-" alone reads a whole JSON object from stdin. Writing no data needs -force.

    $ vigil write secret/data/foo data=@data.json
    $ echo '{"data":{"a":"b"}}' | vigil write secret/data/foo -
    $ vigil write -force sys/rotate`)
	var force bool
	fs.BoolVar(&force, "force", false, "allow a write with no data")
	fs.BoolVar(&force, "f", false, "shorthand for -force")
	pos, code, ok := cf.parse(fs, args, 1, -1)
	if !ok {
		return code
	}
	data, err := parseKVArgs(pos[1:])
	if err != nil {
		return usageError("Failed to parse K=V data: %v", err)
	}
	if len(data) == 0 && !force {
		return usageError("Must supply data or use -force")
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	path := sanitizePath(pos[0])
	s, err := client.Logical().Write(path, data)
	if err != nil {
		return apiError("writing data to "+path, err)
	}
	if s == nil {
		return cf.success("Data written to: %s", path)
	}
	return cf.printSecret(s)
}

// runList is `vigil list PATH`.
func runList(args []string) int {
	var cf clientFlags
	fs := newFlags("list", &cf)
	cf.headerFlag(fs)
	setUsage(fs, "list [options] PATH", `
Lists the keys under PATH (folders end in "/").

    $ vigil list secret/metadata/
    $ vigil list auth/token/accessors`)
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	path := sanitizePath(pos[0]) + "/"
	s, err := client.Logical().List(path)
	if err != nil {
		return apiError("listing "+path, err)
	}
	_, hasKeys := keysOf(s)
	if !cf.isTable() && cf.field == "" && !hasKeys {
		printJSON([]string{})
		return 2
	}
	if s == nil {
		fmt.Fprintf(stderr, "No value found at %s\n", path)
		return 2
	}
	if s.Data == nil {
		return cf.printSecret(s) // warnings only
	}
	if !hasKeys {
		fmt.Fprintf(stderr, "No entries found at %s\n", path)
		return 2
	}
	return cf.printKeys(s)
}

// runDelete is `vigil delete PATH [K=V...]` (K=V become query parameters).
func runDelete(args []string) int {
	var cf clientFlags
	fs := newFlags("delete", &cf)
	cf.headerFlag(fs)
	setUsage(fs, "delete [options] PATH [K=V...]", `
Deletes the data at PATH. K=V pairs are sent as query parameters.

    $ vigil delete secret/data/foo`)
	pos, code, ok := cf.parse(fs, args, 1, -1)
	if !ok {
		return code
	}
	params, err := stringLists(pos[1:])
	if err != nil {
		return usageError("Failed to parse K=V data: %v", err)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	path := sanitizePath(pos[0])
	s, err := client.Logical().DeleteWithData(path, params)
	if err != nil {
		return apiError("deleting "+path, err)
	}
	if s == nil {
		return cf.success("Data deleted (if it existed) at: %s", path)
	}
	return cf.printSecret(s)
}
