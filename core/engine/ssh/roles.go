package ssh

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// roleEntry is a stored CA role. JSON names are Vault's.
type roleEntry struct {
	KeyType                string            `json:"key_type"`
	DefaultUser            string            `json:"default_user"`
	AllowedUsers           string            `json:"allowed_users"`
	AllowedDomains         string            `json:"allowed_domains"`
	AllowBareDomains       bool              `json:"allow_bare_domains"`
	AllowSubdomains        bool              `json:"allow_subdomains"`
	AllowUserCertificates  bool              `json:"allow_user_certificates"`
	AllowHostCertificates  bool              `json:"allow_host_certificates"`
	AllowUserKeyIDs        bool              `json:"allow_user_key_ids"`
	AllowEmptyPrincipals   bool              `json:"allow_empty_principals"`
	KeyIDFormat            string            `json:"key_id_format"`
	AllowedCriticalOptions string            `json:"allowed_critical_options"`
	DefaultCriticalOptions map[string]string `json:"default_critical_options"`
	AllowedExtensions      string            `json:"allowed_extensions"`
	DefaultExtensions      map[string]string `json:"default_extensions"`
	// AllowedUserKeyLengths maps a key type (rsa, ecdsa/ec, ed25519 or an SSH
	// algorithm name) to the sizes accepted for it.
	AllowedUserKeyLengths map[string][]int `json:"allowed_user_key_lengths"`
	AlgorithmSigner       string           `json:"algorithm_signer"`
	TTL                   time.Duration    `json:"ttl"`
	MaxTTL                time.Duration    `json:"max_ttl"`
	NotBeforeDuration     time.Duration    `json:"not_before_duration"`
}

// Vault's identity-templating switches. Vigil does not render templates;
// turning one on is refused so no certificate carries a literal "{{...}}".
var templateFlags = []string{"allowed_users_template", "allowed_domains_template", "default_user_template", "default_extensions_template"}

func roleFields() map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"name":                     {Type: framework.TypeString, Description: "Name of the role."},
		"key_type":                 {Type: framework.TypeLowerCaseString, Description: `Role type; only "ca" (signed certificates) is supported.`},
		"default_user":             {Type: framework.TypeString, Description: "Principal used when a user certificate request names none."},
		"allowed_users":            {Type: framework.TypeString, Description: `Comma-separated principals user certificates may name; "*" allows any.`},
		"allowed_domains":          {Type: framework.TypeString, Description: "Comma-separated domains host certificates may name."},
		"allow_bare_domains":       {Type: framework.TypeBool, Description: "Host certificates may name an allowed domain itself."},
		"allow_subdomains":         {Type: framework.TypeBool, Description: "Host certificates may name subdomains of the allowed domains."},
		"allow_user_certificates":  {Type: framework.TypeBool, Description: "Allow signing user certificates."},
		"allow_host_certificates":  {Type: framework.TypeBool, Description: "Allow signing host certificates."},
		"allow_user_key_ids":       {Type: framework.TypeBool, Description: "Let the request set the certificate's key id."},
		"allow_empty_principals":   {Type: framework.TypeBool, Description: "Allow certificates valid for any principal."},
		"key_id_format":            {Type: framework.TypeString, Description: "Key id template: {{token_display_name}}, {{role_name}}, {{public_key_hash}}."},
		"allowed_critical_options": {Type: framework.TypeString, Description: "Comma-separated critical options a request may set (empty: any)."},
		"default_critical_options": {Type: framework.TypeMap, Description: "Critical options used when a request sets none."},
		"allowed_extensions":       {Type: framework.TypeString, Description: `Comma-separated extensions a request may set; "*" allows any, empty allows none.`},
		"default_extensions":       {Type: framework.TypeMap, Description: "Extensions used when a request sets none."},
		"allowed_user_key_lengths": {Type: framework.TypeMap, Description: "Key type to accepted size(s) of the keys to sign."},
		"algorithm_signer": {Type: framework.TypeString, Default: "default", Description: "RSA CA signature algorithm: default (rsa-sha2-256), ssh-rsa, rsa-sha2-256, rsa-sha2-512.",
			AllowedValues: []any{"", "default", ssh.KeyAlgoRSA, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512}},
		"ttl":                 {Type: framework.TypeDurationSecond, Description: "Default certificate lifetime (0: the mount's default lease TTL)."},
		"max_ttl":             {Type: framework.TypeDurationSecond, Description: "Maximum certificate lifetime (0: the mount's max lease TTL)."},
		"not_before_duration": {Type: framework.TypeDurationSecond, Default: 30, Description: "How far ValidAfter is backdated."},
	}
	for _, k := range templateFlags {
		f[k] = &framework.FieldSchema{Type: framework.TypeBool, Description: "Identity templating (not supported: must be false)."}
	}
	return f
}

func (b *Backend) rolesListRoute() framework.Route {
	return framework.Route{
		Pattern: `roles/?`,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpList: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				keys, err := st.storage.List(ctx, rolesPrefix)
				if err != nil {
					return nil, err
				}
				if len(keys) == 0 {
					return nil, core.ErrNotFound
				}
				return &core.Response{Data: map[string]any{"keys": keys}}, nil
			}),
		},
		Help: "List roles.",
	}
}

func (b *Backend) roleRoute() framework.Route {
	return framework.Route{
		Pattern: `roles/` + framework.GenericNameRegex("name"),
		Fields:  roleFields(),
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readRole),
			core.OpUpdate: b.handler(b.writeRole),
			core.OpDelete: b.handler(func(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				return nil, st.storage.Delete(ctx, rolesPrefix+d.String("name"))
			}),
		},
		ExistenceCheck: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
			st, err := b.state()
			if err != nil {
				return false, err
			}
			r, err := st.getRole(ctx, d.String("name"))
			return r != nil, err
		},
		Help: "Manage the roles certificates are signed for.",
	}
}

func (st *state) getRole(ctx context.Context, name string) (*roleEntry, error) {
	var r roleEntry
	ok, err := storage.GetJSON(ctx, st.storage, rolesPrefix+name, &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) readRole(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	r, err := st.getRole(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: r.data()}, nil
}

// writeRole replaces the role with the request's fields (unset fields take
// their defaults), as Vault's POST does.
func (b *Backend) writeRole(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	r, err := roleFromFields(d)
	if err != nil {
		return nil, err
	}
	return nil, storage.PutJSON(ctx, st.storage, rolesPrefix+d.String("name"), r)
}

// roleFromFields builds and checks a role. Errors are CodeInvalid.
func roleFromFields(d *framework.FieldData) (*roleEntry, error) {
	switch kt := d.String("key_type"); kt {
	case "ca":
	case "":
		return nil, core.Invalid("missing key_type")
	case "otp", "dynamic":
		return nil, core.Invalid("key_type %q is not supported by this server: only \"ca\" (signed SSH certificates) is", kt)
	default:
		return nil, core.Invalid("invalid key_type %q: only \"ca\" is supported", kt)
	}
	for _, k := range templateFlags {
		if d.Bool(k) {
			return nil, core.Invalid("%s: identity templating is not supported by this server", k)
		}
	}
	r := &roleEntry{
		KeyType:                "ca",
		DefaultUser:            strings.TrimSpace(d.String("default_user")),
		AllowedUsers:           cleanList(d.String("allowed_users")),
		AllowedDomains:         cleanList(d.String("allowed_domains")),
		AllowBareDomains:       d.Bool("allow_bare_domains"),
		AllowSubdomains:        d.Bool("allow_subdomains"),
		AllowUserCertificates:  d.Bool("allow_user_certificates"),
		AllowHostCertificates:  d.Bool("allow_host_certificates"),
		AllowUserKeyIDs:        d.Bool("allow_user_key_ids"),
		AllowEmptyPrincipals:   d.Bool("allow_empty_principals"),
		KeyIDFormat:            d.String("key_id_format"),
		AllowedCriticalOptions: cleanList(d.String("allowed_critical_options")),
		AllowedExtensions:      cleanList(d.String("allowed_extensions")),
		AlgorithmSigner:        d.String("algorithm_signer"),
		TTL:                    d.Duration("ttl"),
		MaxTTL:                 d.Duration("max_ttl"),
		NotBeforeDuration:      d.Duration("not_before_duration"),
	}
	if r.AlgorithmSigner == "" {
		r.AlgorithmSigner = "default"
	}
	var err error
	if r.DefaultCriticalOptions, err = stringMap("default_critical_options", d.Map("default_critical_options")); err != nil {
		return nil, err
	}
	if r.DefaultExtensions, err = stringMap("default_extensions", d.Map("default_extensions")); err != nil {
		return nil, err
	}
	if r.AllowedUserKeyLengths, err = keyLengths(d.Map("allowed_user_key_lengths")); err != nil {
		return nil, err
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return nil, core.Invalid(`"ttl" value must be less than "max_ttl" value`)
	}
	if !r.AllowUserCertificates && !r.AllowHostCertificates {
		return nil, core.Invalid("either allow_user_certificates or allow_host_certificates must be set")
	}
	return r, nil
}

// data is a role as Vault returns it: durations in seconds.
func (r *roleEntry) data() map[string]any {
	lengths := map[string]any{}
	for k, v := range r.AllowedUserKeyLengths {
		lengths[k] = v
	}
	return map[string]any{
		"key_type":                    r.KeyType,
		"default_user":                r.DefaultUser,
		"default_user_template":       false,
		"allowed_users":               r.AllowedUsers,
		"allowed_users_template":      false,
		"allowed_domains":             r.AllowedDomains,
		"allowed_domains_template":    false,
		"allow_bare_domains":          r.AllowBareDomains,
		"allow_subdomains":            r.AllowSubdomains,
		"allow_user_certificates":     r.AllowUserCertificates,
		"allow_host_certificates":     r.AllowHostCertificates,
		"allow_user_key_ids":          r.AllowUserKeyIDs,
		"allow_empty_principals":      r.AllowEmptyPrincipals,
		"key_id_format":               r.KeyIDFormat,
		"allowed_critical_options":    r.AllowedCriticalOptions,
		"default_critical_options":    nonNilMap(r.DefaultCriticalOptions),
		"allowed_extensions":          r.AllowedExtensions,
		"default_extensions":          nonNilMap(r.DefaultExtensions),
		"default_extensions_template": false,
		"allowed_user_key_lengths":    lengths,
		"algorithm_signer":            r.AlgorithmSigner,
		"ttl":                         int64(r.TTL / time.Second),
		"max_ttl":                     int64(r.MaxTTL / time.Second),
		"not_before_duration":         int64(r.NotBeforeDuration / time.Second),
	}
}

// cleanList trims the items of a comma-separated list and drops empty ones.
func cleanList(s string) string {
	return strings.Join(splitList(s), ",")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// stringMap converts a JSON object of strings. Non-string values are
// refused rather than stringified, so {"permit-pty": true} is not silently
// turned into the text "true".
func stringMap(field string, m map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, core.Invalid("%s: value of %q must be a string", field, k)
		}
		out[k] = s
	}
	return out, nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// keyLengths parses allowed_user_key_lengths: each value is a size or a
// list of sizes (numbers or numeric strings).
func keyLengths(m map[string]any) (map[string][]int, error) {
	out := map[string][]int{}
	for k, v := range m {
		var items []any
		switch x := v.(type) {
		case []any:
			items = x
		default:
			items = []any{x}
		}
		for _, it := range items {
			n, err := toInt(it)
			if err != nil {
				return nil, core.Invalid("allowed_user_key_lengths: %q: %v", k, err)
			}
			out[k] = append(out[k], n)
		}
	}
	return out, nil
}

func toInt(v any) (int, error) {
	switch x := v.(type) {
	case float64:
		if x != float64(int(x)) {
			return 0, fmt.Errorf("%v is not a whole number", x)
		}
		return int(x), nil
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return n, nil
	case interface{ Int64() (int64, error) }:
		n, err := x.Int64()
		return int(n), err
	}
	return 0, fmt.Errorf("%v is not a number", v)
}
