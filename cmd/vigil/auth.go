package main

// `vigil auth enable|disable|list`: the sys/auth API.

import (
	"fmt"
	"sort"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	registerGroup("auth", "Enable, list and disable auth methods")
	register(&command{name: "auth enable", synopsis: "Enable an auth method", run: runAuthEnable})
	register(&command{name: "auth disable", synopsis: "Disable an auth method (its tokens are revoked)", run: runAuthDisable})
	register(&command{name: "auth list", synopsis: "List the enabled auth methods", run: runAuthList})
}

func runAuthEnable(args []string) int {
	var cf clientFlags
	fs := newFlags("auth enable", &cf)
	setUsage(fs, "auth enable [options] TYPE", `
Enables an auth method of TYPE at auth/<-path> (default: TYPE).

    $ vigil auth enable userpass
    $ vigil auth enable -path=apps approle`)
	path := fs.String("path", "", "where to enable the method, under auth/ (default: TYPE)")
	description := fs.String("description", "", "human-friendly description")
	var defTTL, maxTTL durationFlag
	fs.Var(&defTTL, "default-lease-ttl", "default TTL of the tokens this method issues")
	fs.Var(&maxTTL, "max-lease-ttl", "maximum TTL of the tokens this method issues")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	typ := strings.TrimSpace(pos[0])
	mount := *path
	if mount == "" {
		mount = typ
	}
	mount = sanitizePath(mount)
	in := &vaultapi.EnableAuthOptions{Type: typ, Description: *description}
	if defTTL.set {
		in.Config.DefaultLeaseTTL = durString(defTTL)
	}
	if maxTTL.set {
		in.Config.MaxLeaseTTL = durString(maxTTL)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if err := client.Sys().EnableAuthWithOptions(mount, in); err != nil {
		return apiError("enabling", err)
	}
	fmt.Fprintf(stdout, "Success! Enabled %s auth method at: %s/\n", typ, mount)
	return 0
}

func runAuthDisable(args []string) int {
	var cf clientFlags
	fs := newFlags("auth disable", &cf)
	setUsage(fs, "auth disable PATH", "\nDisables the auth method at auth/PATH.")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p := sanitizePath(strings.TrimPrefix(pos[0], "auth/"))
	if err := client.Sys().DisableAuth(p); err != nil {
		return apiError("disabling", err)
	}
	fmt.Fprintf(stdout, "Success! Disabled the auth method (if it existed) at: %s/\n", p)
	return 0
}

func runAuthList(args []string) int {
	var cf clientFlags
	fs := newFlags("auth list", &cf)
	setUsage(fs, "auth list", "\nLists the enabled auth methods.")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	auths, err := client.Sys().ListAuth()
	if err != nil {
		return apiError("listing auth methods", err)
	}
	if cf.format == "json" {
		return cf.output(auths)
	}
	paths := make([]string, 0, len(auths))
	for p := range auths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	rows := [][]string{{"Path", "Type", "Accessor", "Description"}, {"----", "----", "--------", "-----------"}}
	for _, p := range paths {
		a := auths[p]
		rows = append(rows, []string{p, a.Type, a.Accessor, a.Description})
	}
	printTable(rows)
	return 0
}
