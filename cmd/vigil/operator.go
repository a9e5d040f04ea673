package main

import (
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	registerGroup("operator", "Initialise, unseal, seal and back up the server")
	register(&command{name: "operator init", synopsis: "Initialise a server: create the unseal keys and root token", run: runOperatorInit})
	register(&command{name: "operator unseal", synopsis: "Submit an unseal key share", run: runOperatorUnseal})
	register(&command{name: "operator seal", synopsis: "Seal the server", run: runOperatorSeal})
}

// initOutput is `vigil operator init -format=json`, in Vault's shape plus
// key_holders (the label of each share, in order).
type initOutput struct {
	UnsealKeysB64         []string `json:"unseal_keys_b64"`
	UnsealKeysHex         []string `json:"unseal_keys_hex"`
	UnsealShares          int      `json:"unseal_shares"`
	UnsealThreshold       int      `json:"unseal_threshold"`
	RecoveryKeysB64       []string `json:"recovery_keys_b64"`
	RecoveryKeysHex       []string `json:"recovery_keys_hex"`
	RecoveryKeysShares    int      `json:"recovery_keys_shares"`
	RecoveryKeysThreshold int      `json:"recovery_keys_threshold"`
	RootToken             string   `json:"root_token"`
	KeyHolders            []string `json:"key_holders,omitempty"`
}

// initResponse is sys/init's answer (Vault's fields and key_holders).
type initResponse struct {
	Keys            []string `json:"keys"`
	KeysB64         []string `json:"keys_base64"`
	RecoveryKeys    []string `json:"recovery_keys"`
	RecoveryKeysB64 []string `json:"recovery_keys_base64"`
	RootToken       string   `json:"root_token"`
	KeyHolders      []string `json:"key_holders"`
}

// splitLabels splits comma-separated flag values, trimming spaces.
func splitLabels(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// runOperatorInit is `vigil operator init [-key-shares=5 -key-threshold=3]`.
func runOperatorInit(args []string) int {
	var cf clientFlags
	fs := newFlags("operator init", &cf)
	setUsage(fs, "operator init [options]", `
Initialises a new server: generates the root key and creates the initial
root token. With the Shamir seal the unseal key is split into key shares;
with an auto seal (awskms, pkcs11, transit) the seal holds the key and a
recovery key is split into recovery shares instead, used for rekey and
root generation. The shares are printed once and never stored by the
server; it keeps only a public commitment to each (for key drills).

Name the person or place each share goes to with -key-holders, one label
per share in order; the labels are printed next to the shares and recorded
so key drills and audit records can name the holder.

    $ vigil operator init -key-shares=5 -key-threshold=3 \
        -key-holders="alice,bob,carol,dave,erin"
    $ vigil operator init -recovery-shares=5 -recovery-threshold=3   # auto seal

With -status, only reports whether the server is initialised (exit 0 if so,
2 if not, 1 on error).`)
	shares := fs.Int("key-shares", 5, "number of unseal key shares to create (Shamir seal)")
	threshold := fs.Int("key-threshold", 3, "number of shares required to unseal (Shamir seal)")
	status := fs.Bool("status", false, "only print whether the server is initialised (exit 0 yes, 2 no)")
	var pgpKeys, holders stringSliceFlag
	fs.Var(&pgpKeys, "pgp-keys", "PGP public keys to encrypt the shares with (not supported by Vigil; the server rejects them)")
	fs.Var(&holders, "key-holders", "comma-separated label of each share's holder, in order (e.g. \"alice,bob,carol\")")
	rootPGP := fs.String("root-token-pgp-key", "", "PGP public key to encrypt the root token with (not supported by Vigil)")
	recShares := fs.Int("recovery-shares", 5, "recovery key shares (auto seal)")
	recThreshold := fs.Int("recovery-threshold", 3, "recovery shares required for rekey and root generation (auto seal)")
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if *status {
		inited, err := client.Sys().InitStatus()
		if err != nil {
			apiError("checking init status", err)
			return 1
		}
		if inited {
			fmt.Fprintln(stdout, "Vigil is initialized")
			return 0
		}
		fmt.Fprintln(stdout, "Vigil is not initialized")
		return 2
	}
	body := map[string]any{"secret_shares": *shares, "secret_threshold": *threshold, "root_token_pgp_key": *rootPGP,
		"recovery_shares": *recShares, "recovery_threshold": *recThreshold}
	if keys := splitLabels(pgpKeys); len(keys) > 0 {
		body["pgp_keys"] = keys
	}
	if h := splitLabels(holders); len(h) > 0 {
		body["key_holders"] = h
	}
	var res initResponse
	if err := rawJSONRequest(client, "PUT", "/v1/sys/init", body, &res); err != nil {
		return apiError("initializing", err)
	}
	auto := len(res.Keys) == 0 && len(res.RecoveryKeys) > 0
	out := initOutput{UnsealKeysB64: nonNil(res.KeysB64), UnsealKeysHex: nonNil(res.Keys), UnsealShares: len(res.Keys),
		UnsealThreshold: *threshold, RecoveryKeysB64: nonNil(res.RecoveryKeysB64), RecoveryKeysHex: nonNil(res.RecoveryKeys),
		RootToken: res.RootToken, KeyHolders: res.KeyHolders}
	if auto {
		out.UnsealThreshold, out.RecoveryKeysShares, out.RecoveryKeysThreshold = 0, len(res.RecoveryKeys), *recThreshold
	}
	if cf.field != "" {
		return cf.printField(cf.field, map[string]any{
			"unseal_keys_b64": out.UnsealKeysB64, "unseal_keys_hex": out.UnsealKeysHex,
			"unseal_shares": out.UnsealShares, "unseal_threshold": out.UnsealThreshold, "root_token": out.RootToken,
			"recovery_keys_b64": out.RecoveryKeysB64, "recovery_keys_hex": out.RecoveryKeysHex, "key_holders": out.KeyHolders,
		}[cf.field])
	}
	if !cf.isTable() {
		return printJSON(out)
	}
	keys, kind, t := res.KeysB64, "Unseal Key", *threshold
	if auto {
		keys, kind, t = res.RecoveryKeysB64, "Recovery Key", *recThreshold
	}
	for i, k := range keys {
		fmt.Fprintf(stdout, "%s %d: %s\n", kind, i+1, k)
	}
	fmt.Fprintf(stdout, "\nInitial Root Token: %s\n\n", res.RootToken)
	printShareCustody(kind, len(keys), res.KeyHolders)
	if auto {
		fmt.Fprintf(stdout, `Success! Vigil is initialized

Recovery key initialized with %d key shares and a key threshold of %d. The
server unseals itself through its seal; the recovery keys are needed for
rekey and root token generation (and to migrate away from the seal), not
to unseal. Please securely distribute the key shares printed above.
`, len(keys), t)
		return 0
	}
	fmt.Fprintf(stdout, `Vigil initialized with %d key shares and a key threshold of %d. Please securely
distribute the key shares printed above. When Vigil is re-sealed, restarted,
or stopped, you must supply at least %d of these keys to unseal it before it
can start servicing requests.

Vigil does not store the generated root key. Without at least %d keys to
reconstruct the root key, Vigil will remain permanently sealed!
`, len(keys), t, t, t)
	return 0
}

// printShareCustody prints where each share went: the holder labels given
// with -key-holders, or a reminder to record them.
func printShareCustody(kind string, n int, holders []string) {
	if len(holders) == 0 {
		fmt.Fprintf(stdout, "Share custody: no holders were named. Record who holds each share (re-run a\nrekey with -key-holders to have Vigil record them), then run a key drill:\n`vigil operator key-drill start`.\n\n")
		return
	}
	fmt.Fprintln(stdout, "Where each share went (recorded by the server; prove possession with key drills):")
	for i := range n {
		h := "(unlabelled)"
		if i < len(holders) {
			h = holders[i]
		}
		fmt.Fprintf(stdout, "    %s %d -> %s\n", kind, i+1, h)
	}
	fmt.Fprintln(stdout)
}

// rawJSONRequest sends body and decodes the JSON answer into out (nil: ignore).
func rawJSONRequest(c *vaultapi.Client, method, path string, body, out any) error {
	r := c.NewRequest(method, path)
	if body != nil {
		if err := r.SetJSONBody(body); err != nil {
			return err
		}
	}
	//lint:ignore SA1019 RawRequest: Vigil's own fields and exact shapes.
	resp, err := c.RawRequest(r)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return err
	}
	if out == nil || resp.StatusCode == 204 {
		return nil
	}
	return resp.DecodeJSON(out)
}

// runOperatorUnseal is `vigil operator unseal [-reset] [KEY]`. Without KEY
// the key is read from stdin (hidden behind a prompt on a terminal).
func runOperatorUnseal(args []string) int {
	var cf clientFlags
	fs := newFlags("operator unseal", &cf)
	setUsage(fs, "operator unseal [options] [KEY]", `
Provides one unseal key share. Once the threshold of shares has been given,
the server unseals. Without KEY the share is read from stdin (a hidden
prompt on a terminal), which keeps it out of the shell history.

During a seal migration (the configuration names a new seal, or the old
one with disabled = "true"), give the old seal's shares with -migrate:
unseal keys when leaving Shamir, recovery keys when leaving an auto seal.

    $ vigil operator unseal
    $ vigil operator unseal -reset
    $ vigil operator unseal -migrate`)
	reset := fs.Bool("reset", false, "discard the shares provided so far")
	migrate := fs.Bool("migrate", false, "give the key to a pending seal migration (the old seal's unseal or recovery keys)")
	pos, code, ok := cf.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if *reset {
		st, err := client.Sys().ResetUnsealProcess()
		if err != nil {
			return apiError("resetting unseal process", err)
		}
		return printSealStatus(&cf, client, st)
	}
	key := ""
	if len(pos) == 1 && pos[0] != "-" {
		key = pos[0]
	} else {
		key, err = readSecretInput("Unseal Key (will be hidden): ")
		if err != nil {
			return fail("reading unseal key: %v", err)
		}
	}
	st, err := client.Sys().UnsealWithOptions(&vaultapi.UnsealOpts{Key: strings.TrimSpace(key), Migrate: *migrate})
	if err != nil {
		return apiError("unsealing", err)
	}
	return printSealStatus(&cf, client, st)
}

// runOperatorSeal is `vigil operator seal`.
func runOperatorSeal(args []string) int {
	var cf clientFlags
	fs := newFlags("operator seal", &cf)
	setUsage(fs, "operator seal [options]", `
Seals the server: the keyring is dropped from memory and every request but
status and unseal is refused until the unseal keys are provided again.
Requires a root (sudo) token.`)
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
	if err := client.Sys().Seal(); err != nil {
		return apiError("sealing", err)
	}
	fmt.Fprintln(stdout, "Success! Vigil is sealed.")
	return 0
}
