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

// initOutput is `vigil operator init -format=json`, in Vault's shape.
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
}

// runOperatorInit is `vigil operator init [-key-shares=5 -key-threshold=3]`.
func runOperatorInit(args []string) int {
	var cf clientFlags
	fs := newFlags("operator init", &cf)
	setUsage(fs, "operator init [options]", `
Initialises a new server: generates the root key, splits it into unseal key
shares with Shamir's secret sharing, and creates the initial root token.
The keys are printed once and never stored by the server.

    $ vigil operator init -key-shares=5 -key-threshold=3

With -status, only reports whether the server is initialised (exit 0 if so,
2 if not, 1 on error).`)
	shares := fs.Int("key-shares", 5, "number of unseal key shares to create")
	threshold := fs.Int("key-threshold", 3, "number of shares required to unseal")
	status := fs.Bool("status", false, "only print whether the server is initialised (exit 0 yes, 2 no)")
	var pgpKeys stringSliceFlag
	fs.Var(&pgpKeys, "pgp-keys", "PGP public keys to encrypt the shares with (not supported by Vigil; the server rejects them)")
	rootPGP := fs.String("root-token-pgp-key", "", "PGP public key to encrypt the root token with (not supported by Vigil)")
	recShares := fs.Int("recovery-shares", 0, "recovery key shares (auto-unseal only; not supported by Vigil)")
	recThreshold := fs.Int("recovery-threshold", 0, "recovery key threshold (auto-unseal only; not supported by Vigil)")
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
	req := &vaultapi.InitRequest{SecretShares: *shares, SecretThreshold: *threshold, RootTokenPGPKey: *rootPGP,
		RecoveryShares: *recShares, RecoveryThreshold: *recThreshold}
	for _, k := range pgpKeys {
		req.PGPKeys = append(req.PGPKeys, strings.Split(k, ",")...)
	}
	res, err := client.Sys().Init(req)
	if err != nil {
		return apiError("initializing", err)
	}
	out := initOutput{UnsealKeysB64: nonNil(res.KeysB64), UnsealKeysHex: nonNil(res.Keys), UnsealShares: len(res.Keys),
		UnsealThreshold: *threshold, RecoveryKeysB64: nonNil(res.RecoveryKeysB64), RecoveryKeysHex: nonNil(res.RecoveryKeys),
		RecoveryKeysShares: *recShares, RecoveryKeysThreshold: *recThreshold, RootToken: res.RootToken}
	if cf.field != "" {
		return cf.printField(cf.field, map[string]any{
			"unseal_keys_b64": out.UnsealKeysB64, "unseal_keys_hex": out.UnsealKeysHex,
			"unseal_shares": out.UnsealShares, "unseal_threshold": out.UnsealThreshold, "root_token": out.RootToken,
		}[cf.field])
	}
	if !cf.isTable() {
		return printJSON(out)
	}
	keys := res.KeysB64
	if len(keys) == 0 {
		keys = res.Keys
	}
	for i, k := range keys {
		fmt.Fprintf(stdout, "Unseal Key %d: %s\n", i+1, k)
	}
	fmt.Fprintf(stdout, "\nInitial Root Token: %s\n\n", res.RootToken)
	fmt.Fprintf(stdout, `Vigil initialized with %d key shares and a key threshold of %d. Please securely
distribute the key shares printed above. When Vigil is re-sealed, restarted,
or stopped, you must supply at least %d of these keys to unseal it before it
can start servicing requests.

Vigil does not store the generated root key. Without at least %d keys to
reconstruct the root key, Vigil will remain permanently sealed!
`, len(keys), *threshold, *threshold, *threshold)
	return 0
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

    $ vigil operator unseal
    $ vigil operator unseal -reset`)
	reset := fs.Bool("reset", false, "discard the shares provided so far")
	migrate := fs.Bool("migrate", false, "seal migration (not supported by Vigil; accepted for compatibility)")
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
