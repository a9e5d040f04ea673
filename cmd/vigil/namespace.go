package main

// The namespace commands, as Vault's and OpenBao's `vault namespace ...`.
// Each acts on the children of the namespace the command runs in
// (-namespace, $VIGIL_NAMESPACE or $VAULT_NAMESPACE):
//
//	vigil namespace list
//	vigil namespace create [-custom-metadata=K=V]... NAME
//	vigil namespace lookup NAME
//	vigil namespace patch [-custom-metadata=K=V]... [-remove-custom-metadata=K]... NAME
//	vigil namespace delete NAME
//	vigil namespace lock [PATH]
//	vigil namespace unlock [-unlock-key=KEY] [PATH]

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

func init() {
	register(&command{name: "namespace list", synopsis: "List the child namespaces", run: runNamespaceList})
	register(&command{name: "namespace create", synopsis: "Create a child namespace", run: runNamespaceCreate})
	register(&command{name: "namespace lookup", synopsis: "Show a child namespace", run: runNamespaceLookup})
	register(&command{name: "namespace patch", synopsis: "Change a child namespace's custom metadata", run: runNamespacePatch})
	register(&command{name: "namespace delete", synopsis: "Delete a child namespace and everything in it", run: runNamespaceDelete})
	register(&command{name: "namespace lock", synopsis: "Lock the API of a namespace (and of its children)", run: runNamespaceLock})
	register(&command{name: "namespace unlock", synopsis: "Unlock the API of a namespace", run: runNamespaceUnlock})
}

func runNamespaceList(args []string) int {
	var cf clientFlags
	fs := newFlags("namespace list", &cf)
	setUsage(fs, "namespace list [options]", "Lists the namespaces directly under the current one.\n\n    $ vigil namespace list\n    $ vigil namespace list -namespace=hospital-a")
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := c.Logical().List("sys/namespaces")
	if err != nil {
		return apiError("listing namespaces", err)
	}
	names := []string{}
	if s != nil {
		if keys, ok := s.Data["keys"].([]any); ok {
			for _, k := range keys {
				names = append(names, fmt.Sprint(k))
			}
		}
	}
	sort.Strings(names)
	if !cf.isTable() {
		return printJSON(names)
	}
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return 0
}

func runNamespaceCreate(args []string) int {
	var cf clientFlags
	fs := newFlags("namespace create", &cf)
	meta := kvFlag{}
	fs.Var(&meta, "custom-metadata", "KEY=VALUE custom metadata (repeatable)")
	setUsage(fs, "namespace create [options] NAME", "Creates the namespace NAME under the current one.\n\n    $ vigil namespace create hospital-a\n    $ vigil namespace create -namespace=hospital-a icu")
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	body := map[string]any{}
	if len(meta) > 0 {
		body["custom_metadata"] = map[string]string(meta)
	}
	s, err := c.Logical().Write("sys/namespaces/"+pos[0], body)
	if err != nil {
		return apiError("creating namespace", err)
	}
	return cf.printSecret(s)
}

func runNamespaceLookup(args []string) int {
	var cf clientFlags
	fs := newFlags("namespace lookup", &cf)
	setUsage(fs, "namespace lookup [options] NAME", "Shows the namespace NAME under the current one.\n\n    $ vigil namespace lookup hospital-a")
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := c.Logical().Read("sys/namespaces/" + pos[0])
	if err != nil {
		return apiError("looking up namespace", err)
	}
	if s == nil {
		return fail("namespace not found: %s", pos[0])
	}
	return cf.printSecret(s)
}

func runNamespacePatch(args []string) int {
	var cf clientFlags
	fs := newFlags("namespace patch", &cf)
	meta := kvFlag{}
	var remove stringSliceFlag
	fs.Var(&meta, "custom-metadata", "KEY=VALUE to set (repeatable)")
	fs.Var(&remove, "remove-custom-metadata", "KEY to remove (repeatable)")
	setUsage(fs, "namespace patch [options] NAME", "Changes the custom metadata of the namespace NAME.\n\n    $ vigil namespace patch -custom-metadata=owner=icu hospital-a")
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	patch := map[string]any{}
	for k, v := range meta {
		patch[k] = v
	}
	for _, k := range remove {
		patch[k] = nil
	}
	s, err := c.Logical().JSONMergePatch(context.Background(), "sys/namespaces/"+pos[0], map[string]any{"custom_metadata": patch})
	if err != nil {
		return apiError("patching namespace", err)
	}
	return cf.printSecret(s)
}

func runNamespaceDelete(args []string) int {
	var cf clientFlags
	fs := newFlags("namespace delete", &cf)
	setUsage(fs, "namespace delete [options] NAME", `
Deletes the namespace NAME under the current one and everything in it: its
tokens and their leases are revoked, its mounts and auth methods disabled
(their leases revoked, their data deleted), its policies and identity
deleted. A namespace with child namespaces cannot be deleted.

    $ vigil namespace delete hospital-a`)
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := c.Logical().Delete("sys/namespaces/" + pos[0])
	if err != nil {
		return apiError("deleting namespace", err)
	}
	if s != nil && len(s.Warnings) > 0 {
		for _, w := range s.Warnings {
			fmt.Fprintln(stderr, "WARNING! "+w)
		}
		return 0
	}
	fmt.Fprintf(stdout, "Success! Namespace deleted at: %s/\n", strings.Trim(pos[0], "/"))
	return 0
}

func runNamespaceLock(args []string) int {
	var cf clientFlags
	fs := newFlags("namespace lock", &cf)
	setUsage(fs, "namespace lock [options] [PATH]", `
Locks the API of the current namespace, or of its descendant PATH: every
request to it and to its children is refused until it is unlocked. Prints
the unlock key.

    $ vigil namespace lock -namespace=hospital-a
    $ vigil namespace lock hospital-a/icu`)
	pos, code, ok := cf.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p := "sys/namespaces/api-lock/lock"
	if len(pos) == 1 {
		p += "/" + strings.Trim(pos[0], "/")
	}
	s, err := c.Logical().Write(p, nil)
	if err != nil {
		return apiError("locking namespace", err)
	}
	return cf.printSecret(s)
}

func runNamespaceUnlock(args []string) int {
	var cf clientFlags
	fs := newFlags("namespace unlock", &cf)
	key := fs.String("unlock-key", "", "the key the lock returned (without it, the token needs sudo on the unlock path)")
	setUsage(fs, "namespace unlock [options] [PATH]", "Unlocks the API of the current namespace, or of its descendant PATH.\n\n    $ vigil namespace unlock -unlock-key=... hospital-a/icu")
	pos, code, ok := cf.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p := "sys/namespaces/api-lock/unlock"
	if len(pos) == 1 {
		p += "/" + strings.Trim(pos[0], "/")
	}
	body := map[string]any{}
	if *key != "" {
		body["unlock_key"] = *key
	}
	s, err := c.Logical().Write(p, body)
	if err != nil {
		return apiError("unlocking namespace", err)
	}
	if s != nil {
		for _, w := range s.Warnings {
			fmt.Fprintln(stderr, "WARNING! "+w)
		}
	}
	fmt.Fprintln(stdout, "Success! Namespace unlocked.")
	return 0
}
