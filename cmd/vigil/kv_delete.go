package main

// `vigil kv delete|undelete|destroy`: soft-delete, restore and permanently
// destroy KV v2 versions (plain delete on KV v1).

import (
	"fmt"
	"strings"
)

func init() {
	register(&command{name: "kv delete", synopsis: "Delete a secret (soft delete of versions on v2)", run: runKVDelete})
	register(&command{name: "kv undelete", synopsis: "Restore soft-deleted versions of a KV v2 secret", run: runKVUndelete})
	register(&command{name: "kv destroy", synopsis: "Permanently destroy versions of a KV v2 secret", run: runKVDestroy})
}

// versionsFlag adds -versions (repeatable, comma-separated) to a kv command.
func (k *kvCmd) versionsFlag(usage string) *stringSliceFlag {
	var v stringSliceFlag
	k.fs.Var(&v, "versions", usage)
	return &v
}

// kvVersions flattens "-versions=1,2 -versions=3" to ["1","2","3"]. The
// server validates them, so its own message is shown for bad input.
func kvVersions(v stringSliceFlag) []string {
	var out []string
	for _, s := range v {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// runKVDelete is `vigil kv delete [-mount=M] [-versions=1,2] PATH`.
func runKVDelete(args []string) int {
	k := newKVCmd("kv delete", "kv delete [options] PATH", `
Deletes the secret at PATH. On KV v2 this is a soft delete of the latest
version (or of the -versions given): the data is kept and can be restored
with "vigil kv undelete". On KV v1 the secret is removed.

    $ vigil kv delete secret/foo
    $ vigil kv delete -versions=1,2 secret/foo`)
	versions := k.versionsFlag("versions to delete (KV v2; default: the latest)")
	pos, code, ok := parseCmd(k.fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	client, err := k.cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p, code := k.resolve(client, pos[0])
	if p == nil {
		return code
	}
	full := p.full("data")
	if vs := kvVersions(*versions); p.v2 && len(vs) > 0 {
		target := p.full("delete")
		if _, err := client.Logical().Write(target, map[string]any{"versions": vs}); err != nil {
			return apiError("deleting "+full, err)
		}
	} else if _, err := client.Logical().Delete(full); err != nil {
		return apiError("deleting "+full, err)
	}
	fmt.Fprintf(stdout, "Success! Data deleted (if it existed) at: %s\n", full)
	return 0
}

// runKVUndelete is `vigil kv undelete [-mount=M] -versions=1,2 PATH`.
func runKVUndelete(args []string) int {
	return kvVersionsOp("undelete", `
Restores soft-deleted versions of a KV v2 secret.

    $ vigil kv undelete -versions=3 secret/foo`)(args)
}

// runKVDestroy is `vigil kv destroy [-mount=M] -versions=1,2 PATH`.
func runKVDestroy(args []string) int {
	return kvVersionsOp("destroy", `
Permanently removes the data of versions of a KV v2 secret. Their metadata
remains (marked destroyed); the data cannot be recovered.

    $ vigil kv destroy -versions=1 secret/foo`)(args)
}

// kvVersionsOp builds undelete and destroy, which differ only in the path.
func kvVersionsOp(op, help string) func([]string) int {
	return func(args []string) int {
		k := newKVCmd("kv "+op, "kv "+op+" [options] -versions=N[,N...] PATH", help)
		versions := k.versionsFlag("versions to " + op + " (required)")
		pos, code, ok := parseCmd(k.fs, args)
		if !ok {
			return code
		}
		if c := wantArgs(pos, 1, 1); c != 0 {
			return c
		}
		vs := kvVersions(*versions)
		if len(vs) == 0 {
			return usageError("No versions provided, use the \"-versions\" flag to specify the version to %s.", op)
		}
		client, err := k.cf.client()
		if err != nil {
			return fail("%v", err)
		}
		p, code := k.resolve(client, pos[0])
		if p == nil {
			return code
		}
		if !p.v2 {
			return usageError("%s not supported on KV Version 1", strings.ToUpper(op[:1])+op[1:])
		}
		target := p.full(op)
		s, err := client.Logical().Write(target, map[string]any{"versions": vs})
		if err != nil {
			return apiError("writing data to "+target, err)
		}
		if s == nil {
			return k.cf.success("Data written to: %s", target)
		}
		return k.cf.printSecret(s)
	}
}
