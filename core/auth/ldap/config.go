package ldap

import (
	"context"
	"crypto/x509"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// config is how the mount reaches the directory and reads users and groups.
type config struct {
	URLs               []string      `json:"url"`
	StartTLS           bool          `json:"starttls"`
	InsecureTLS        bool          `json:"insecure_tls"`
	Certificate        string        `json:"certificate,omitempty"`
	TLSMinVersion      string        `json:"tls_min_version"`
	BindDN             string        `json:"binddn,omitempty"`
	BindPass           string        `json:"bindpass,omitempty"`
	UserDN             string        `json:"userdn,omitempty"`
	UserAttr           string        `json:"userattr"`
	UserFilter         string        `json:"userfilter"`
	UPNDomain          string        `json:"upndomain,omitempty"`
	DiscoverDN         bool          `json:"discoverdn"`
	DenyNullBind       bool          `json:"deny_null_bind"`
	GroupDN            string        `json:"groupdn,omitempty"`
	GroupFilter        string        `json:"groupfilter"`
	GroupAttr          string        `json:"groupattr"`
	CaseSensitiveNames bool          `json:"case_sensitive_names"`
	UsernameAsAlias    bool          `json:"username_as_alias"`
	RequestTimeout     time.Duration `json:"request_timeout"`
	// AllowedGroups (a Vigil addition): when set, only members of one of
	// these directory groups (globs) may log in.
	AllowedGroups []string `json:"allowed_groups,omitempty"`
	tokenutil.Params
}

// Vault's defaults.
const (
	defaultUserFilter  = "({{.UserAttr}}={{.Username}})"
	defaultGroupFilter = "(|(memberUid={{.Username}})(member={{.UserDN}})(uniqueMember={{.UserDN}}))"
)

func defaultConfig() *config {
	return &config{URLs: []string{"ldap://127.0.0.1"}, UserAttr: "cn", UserFilter: defaultUserFilter, DenyNullBind: true,
		GroupFilter: defaultGroupFilter, GroupAttr: "cn", TLSMinVersion: "tls12", RequestTimeout: 90 * time.Second}
}

func (b *Backend) configRoute() framework.Route {
	return framework.Route{Pattern: `config`, Fields: tokenutil.With(map[string]*framework.FieldSchema{
		"url":                  {Type: framework.TypeCommaStringSlice},
		"starttls":             {Type: framework.TypeBool},
		"insecure_tls":         {Type: framework.TypeBool},
		"certificate":          {Type: framework.TypeString},
		"tls_min_version":      {Type: framework.TypeString},
		"binddn":               {Type: framework.TypeString},
		"bindpass":             {Type: framework.TypeString},
		"userdn":               {Type: framework.TypeString},
		"userattr":             {Type: framework.TypeString},
		"userfilter":           {Type: framework.TypeString},
		"upndomain":            {Type: framework.TypeString},
		"discoverdn":           {Type: framework.TypeBool},
		"deny_null_bind":       {Type: framework.TypeBool},
		"groupdn":              {Type: framework.TypeString},
		"groupfilter":          {Type: framework.TypeString},
		"groupattr":            {Type: framework.TypeString},
		"case_sensitive_names": {Type: framework.TypeBool},
		"username_as_alias":    {Type: framework.TypeBool},
		"request_timeout":      {Type: framework.TypeDurationSecond},
		"allowed_groups":       {Type: framework.TypeCommaStringSlice},
	}), Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readConfig, core.OpUpdate: b.writeConfig},
		Help: "Configure the directory."}
}

func (b *Backend) getConfig(ctx context.Context) (*config, error) {
	var c config
	ok, err := storage.GetJSON(ctx, b.env.Storage, "config", &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func (b *Backend) readConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.getConfig(ctx)
	if err != nil || c == nil {
		return nil, err
	}
	ag := c.AllowedGroups
	if ag == nil {
		ag = []string{}
	}
	// bindpass is a credential: never returned.
	data := map[string]any{
		"url": strings.Join(c.URLs, ","), "starttls": c.StartTLS, "insecure_tls": c.InsecureTLS, "certificate": c.Certificate,
		"tls_min_version": c.TLSMinVersion, "binddn": c.BindDN, "userdn": c.UserDN, "userattr": c.UserAttr,
		"userfilter": c.UserFilter, "upndomain": c.UPNDomain, "discoverdn": c.DiscoverDN, "deny_null_bind": c.DenyNullBind,
		"groupdn": c.GroupDN, "groupfilter": c.GroupFilter, "groupattr": c.GroupAttr,
		"case_sensitive_names": c.CaseSensitiveNames, "username_as_alias": c.UsernameAsAlias,
		"request_timeout": int64(c.RequestTimeout / time.Second), "allowed_groups": ag,
	}
	c.Params.Data(data)
	return &core.Response{Data: data}, nil
}

func (b *Backend) writeConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.getConfig(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = defaultConfig()
	}
	if d.Has("url") {
		c.URLs = d.Strings("url")
	}
	for k, dst := range map[string]*string{"certificate": &c.Certificate, "tls_min_version": &c.TLSMinVersion,
		"binddn": &c.BindDN, "bindpass": &c.BindPass, "userdn": &c.UserDN, "userattr": &c.UserAttr,
		"userfilter": &c.UserFilter, "upndomain": &c.UPNDomain, "groupdn": &c.GroupDN,
		"groupfilter": &c.GroupFilter, "groupattr": &c.GroupAttr} {
		if d.Has(k) {
			*dst = d.String(k)
		}
	}
	for k, dst := range map[string]*bool{"starttls": &c.StartTLS, "insecure_tls": &c.InsecureTLS, "discoverdn": &c.DiscoverDN,
		"deny_null_bind": &c.DenyNullBind, "case_sensitive_names": &c.CaseSensitiveNames, "username_as_alias": &c.UsernameAsAlias} {
		if d.Has(k) {
			*dst = d.Bool(k)
		}
	}
	if d.Has("request_timeout") {
		c.RequestTimeout = d.Duration("request_timeout")
	}
	if d.Has("allowed_groups") {
		c.AllowedGroups = d.Strings("allowed_groups")
	}
	if err := c.Params.Update(d); err != nil {
		return nil, err
	}
	if c.UserFilter == "" {
		c.UserFilter = defaultUserFilter
	}
	if c.GroupFilter == "" {
		c.GroupFilter = defaultGroupFilter
	}
	if c.UserAttr == "" {
		c.UserAttr = "cn"
	}
	if c.GroupAttr == "" {
		c.GroupAttr = "cn"
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, "config", c)
}

func (c *config) validate() error {
	if len(c.URLs) == 0 {
		return core.Invalid("url is required")
	}
	for _, u := range c.URLs {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || (pu.Scheme != "ldap" && pu.Scheme != "ldaps") || pu.Host == "" {
			return core.Invalid("url %q is not an ldap:// or ldaps:// URL", u)
		}
	}
	if c.Certificate != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.Certificate)) {
		return core.Invalid("certificate holds no PEM certificate")
	}
	if _, ok := tlsVersions[c.TLSMinVersion]; !ok {
		return core.Invalid("invalid tls_min_version %q: must be tls10, tls11, tls12 or tls13", c.TLSMinVersion)
	}
	for name, f := range map[string]string{"userfilter": c.UserFilter, "groupfilter": c.GroupFilter} {
		if _, err := template.New(name).Parse(f); err != nil {
			return core.Invalid("%s is not a valid template: %v", name, err)
		}
	}
	if c.BindDN != "" && c.BindPass == "" {
		return core.Invalid("binddn needs bindpass")
	}
	return nil
}
