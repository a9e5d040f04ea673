package main

// `vigil unwrap [TOKEN]`: unwrap a response-wrapping token, as Vault's CLI.

import "fmt"

func init() {
	register(&command{name: "unwrap", synopsis: "Unwrap a wrapped response (or run an approved request)", run: runUnwrap})
}

// runUnwrap is `vigil unwrap [options] [TOKEN]`.
func runUnwrap(args []string) int {
	var cf clientFlags
	fs := newFlags("unwrap", &cf)
	setUsage(fs, "unwrap [options] [TOKEN]", `
Unwraps the response a wrapping token holds (its wrap_info.token), once:
the token is spent. Without TOKEN the client token itself is the wrapping
token. For a control-group request, unwrap it with your own token once it
is approved: the request then runs and its response is printed.

    $ vigil unwrap hvs.CAES...
    $ VIGIL_TOKEN=hvs.CAES... vigil unwrap`)
	pos, code, ok := cf.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	tok := ""
	if len(pos) == 1 {
		tok = pos[0]
	}
	s, err := client.Logical().Unwrap(tok)
	if err != nil {
		return apiError("unwrapping", err)
	}
	if s == nil {
		fmt.Fprintln(stderr, "Successfully unwrapped. There was no data in the wrapped secret.")
		return 0
	}
	return cf.printSecret(s)
}
