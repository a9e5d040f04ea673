package main

// `vigil secrets enable|disable|list|tune`: the sys/mounts API.

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	registerGroup("secrets", "Mount, tune and unmount secrets engines")
	register(&command{name: "secrets enable", synopsis: "Mount a secrets engine", run: runSecretsEnable})
	register(&command{name: "secrets disable", synopsis: "Unmount a secrets engine (its data and leases are revoked)", run: runSecretsDisable})
	register(&command{name: "secrets list", synopsis: "List the mounted secrets engines", run: runSecretsList})
	register(&command{name: "secrets tune", synopsis: "Change a secrets engine's lease TTLs, options or description", run: runSecretsTune})
}

// mountPathArg normalises a mount path to "path/".
func mountPathArg(s string) string { return sanitizePath(s) + "/" }

// ttlValue renders a TTL flag for tuning: unset → nil (unchanged), 0 →
// "system" (back to the server default), else seconds.
func ttlValue(f durationFlag) *string {
	if !f.set {
		return nil
	}
	v := "system"
	if f.d > 0 {
		v = durString(f)
	}
	return &v
}

// mountConfigFlags are the flags enable and tune share.
type mountConfigFlags struct {
	defTTL, maxTTL   durationFlag
	description      string
	options          kvFlag
	version          int
	listing          string
	auditReq, auditR stringSliceFlag
	passthrough      stringSliceFlag
}

func (m *mountConfigFlags) register(fs *flag.FlagSet) {
	fs.Var(&m.defTTL, "default-lease-ttl", `default lease TTL for the engine's secrets ("0" or unset: the server default)`)
	fs.Var(&m.maxTTL, "max-lease-ttl", "maximum lease TTL for the engine's secrets")
	fs.StringVar(&m.description, "description", "", "human-friendly description of the mount")
	fs.Var(&m.options, "options", "K=V engine option (repeatable), e.g. -options=version=2")
	fs.IntVar(&m.version, "version", 0, "engine version; shorthand for -options=version=N (KV: 1 or 2)")
	fs.StringVar(&m.listing, "listing-visibility", "", `"unauth" to show the mount in the UI listing, or "hidden"`)
	fs.Var(&m.auditReq, "audit-non-hmac-request-keys", "request key not to HMAC in audit logs (repeatable)")
	fs.Var(&m.auditR, "audit-non-hmac-response-keys", "response key not to HMAC in audit logs (repeatable)")
	fs.Var(&m.passthrough, "passthrough-request-headers", "request header to pass to the engine (repeatable)")
}

// opts returns the options map with -version folded in (nil when neither
// was given).
func (m *mountConfigFlags) opts() map[string]string {
	o := map[string]string(m.options)
	if m.version > 0 {
		if o == nil {
			o = map[string]string{}
		}
		o["version"] = strconv.Itoa(m.version)
	}
	return o
}

// runSecretsEnable is `vigil secrets enable [-path=P] [options] TYPE`.
func runSecretsEnable(args []string) int {
	var cf clientFlags
	fs := newFlags("secrets enable", &cf)
	setUsage(fs, "secrets enable [options] TYPE", `
Mounts a secrets engine of TYPE at -path (default: TYPE). "kv-v2" is short
for "kv" with -version=2.

    $ vigil secrets enable -path=team -version=2 kv
    $ vigil secrets enable -max-lease-ttl=24h -description="app secrets" kv`)
	var mc mountConfigFlags
	mc.register(fs)
	path := fs.String("path", "", "where to mount the engine (default: TYPE)")
	local := fs.Bool("local", false, "mount local to this cluster (not replicated)")
	sealWrap := fs.Bool("seal-wrap", false, "enable seal wrapping for the mount")
	forceNoCache := fs.Bool("force-no-cache", false, "disable caching for the mount")
	pluginName := fs.String("plugin-name", "", "plugin name (with TYPE \"plugin\")")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	typ := strings.TrimSpace(pos[0])
	if typ == "plugin" {
		typ = *pluginName
	}
	mount := *path
	if mount == "" {
		mount = typ
	}
	mount = mountPathArg(mount)
	opts := mc.opts()
	if typ == "kv-v2" {
		typ = "kv"
		if opts == nil {
			opts = map[string]string{}
		}
		if _, ok := opts["version"]; !ok {
			opts["version"] = "2"
		}
	}
	in := &vaultapi.MountInput{Type: typ, Description: mc.description, Local: *local, SealWrap: *sealWrap, Options: opts,
		Config: vaultapi.MountConfigInput{ForceNoCache: *forceNoCache, ListingVisibility: mc.listing,
			AuditNonHMACRequestKeys: mc.auditReq, AuditNonHMACResponseKeys: mc.auditR, PassthroughRequestHeaders: mc.passthrough}}
	if mc.defTTL.set {
		in.Config.DefaultLeaseTTL = durString(mc.defTTL)
	}
	if mc.maxTTL.set {
		in.Config.MaxLeaseTTL = durString(mc.maxTTL)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if err := client.Sys().Mount(mount, in); err != nil {
		return apiError("enabling", err)
	}
	fmt.Fprintf(stdout, "Success! Enabled the %s secrets engine at: %s\n", pos[0], mount)
	return 0
}

// runSecretsDisable is `vigil secrets disable PATH`.
func runSecretsDisable(args []string) int {
	var cf clientFlags
	fs := newFlags("secrets disable", &cf)
	setUsage(fs, "secrets disable [options] PATH", `
Unmounts the secrets engine at PATH. All its data is deleted and all
leases it issued are revoked.

    $ vigil secrets disable team/`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	mount := mountPathArg(pos[0])
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if err := client.Sys().Unmount(mount); err != nil {
		return apiError("disabling secrets engine at "+mount, err)
	}
	fmt.Fprintf(stdout, "Success! Disabled the secrets engine (if it existed) at: %s\n", mount)
	return 0
}

// runSecretsList is `vigil secrets list [-detailed]`.
func runSecretsList(args []string) int {
	var cf clientFlags
	fs := newFlags("secrets list", &cf)
	setUsage(fs, "secrets list [options]", `
Lists the mounted secrets engines.

    $ vigil secrets list -detailed`)
	detailed := fs.Bool("detailed", false, "show TTLs, options, replication and UUIDs")
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	mounts, err := client.Sys().ListMounts()
	if err != nil {
		return apiError("listing secrets engines", err)
	}
	if !cf.isTable() {
		return printJSON(mounts)
	}
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if !*detailed {
		rows := make([][]string, 0, len(paths))
		for _, p := range paths {
			m := mounts[p]
			rows = append(rows, []string{p, m.Type, m.Accessor, m.Description})
		}
		writeTable([]string{"Path", "Type", "Accessor", "Description"}, rows)
		return 0
	}
	ttl := func(typ string, secs int) string {
		switch {
		case typ == "system" || typ == "cubbyhole" || typ == "identity":
			return ""
		case secs != 0:
			return strconv.Itoa(secs)
		}
		return "system"
	}
	rows := make([][]string, 0, len(paths))
	for _, p := range paths {
		m := mounts[p]
		repl := "replicated"
		if m.Local {
			repl = "local"
		}
		rows = append(rows, []string{p, m.Type, m.Accessor, ttl(m.Type, m.Config.DefaultLeaseTTL), ttl(m.Type, m.Config.MaxLeaseTTL),
			strconv.FormatBool(m.Config.ForceNoCache), repl, strconv.FormatBool(m.SealWrap), strconv.FormatBool(m.ExternalEntropyAccess),
			fmt.Sprintf("%v", m.Options), m.Description, m.UUID, m.DeprecationStatus})
	}
	writeTable([]string{"Path", "Plugin", "Accessor", "Default TTL", "Max TTL", "Force No Cache", "Replication", "Seal Wrap",
		"External Entropy Access", "Options", "Description", "UUID", "Deprecation Status"}, rows)
	return 0
}

// runSecretsTune is `vigil secrets tune [options] PATH`. Only the settings
// given are sent; the others keep their values.
func runSecretsTune(args []string) int {
	var cf clientFlags
	fs := newFlags("secrets tune", &cf)
	setUsage(fs, "secrets tune [options] PATH", `
Changes the settings of the secrets engine at PATH. Only the options given
change. A TTL of "0" returns to the server default.

    $ vigil secrets tune -default-lease-ttl=1h -max-lease-ttl=24h team/
    $ vigil secrets tune -options=version=2 kv/`)
	var mc mountConfigFlags
	mc.register(fs)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	in := vaultapi.TuneMountConfigInput{DefaultLeaseTTL: ttlValue(mc.defTTL), MaxLeaseTTL: ttlValue(mc.maxTTL)}
	if set["description"] {
		in.Description = &mc.description
	}
	if o := mc.opts(); o != nil {
		in.Options = &o
	}
	if set["listing-visibility"] {
		in.ListingVisibility = &mc.listing
	}
	if set["audit-non-hmac-request-keys"] {
		v := []string(mc.auditReq)
		in.AuditNonHMACRequestKeys = &v
	}
	if set["audit-non-hmac-response-keys"] {
		v := []string(mc.auditR)
		in.AuditNonHMACResponseKeys = &v
	}
	if set["passthrough-request-headers"] {
		v := []string(mc.passthrough)
		in.PassthroughRequestHeaders = &v
	}
	mount := mountPathArg(pos[0])
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if err := client.Sys().TuneMountAllowNil(mount, in); err != nil {
		return apiError("tuning secrets engine "+mount, err)
	}
	fmt.Fprintf(stdout, "Success! Tuned the secrets engine at: %s\n", mount)
	return 0
}
