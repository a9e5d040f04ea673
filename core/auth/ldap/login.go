package ldap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	glob "github.com/ryanuber/go-glob"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

var tlsVersions = map[string]uint16{"tls10": tls.VersionTLS10, "tls11": tls.VersionTLS11, "tls12": tls.VersionTLS12, "tls13": tls.VersionTLS13}

// errBadLogin is the same for an unknown user and a wrong password.
var errBadLogin = core.Invalid("invalid username or password")

// login checks the client address against the config's token_bound_cidrs,
// binds as the user, reads the user's groups, and answers with the
// policies of the user's and groups' mappings plus the config's.
func (b *Backend) login(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	username, password := d.String("username"), d.String("password")
	c, err := b.getConfig(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.Invalid("the auth method is not configured: write its config first")
	}
	// The mount's token_bound_cidrs apply to every user, so they are
	// checked before the directory is asked anything, as Vault does: the
	// answer then says nothing about the user or the password.
	if err := c.CheckLoginAddr(req); err != nil {
		return nil, err
	}
	if password == "" && c.DenyNullBind {
		return nil, core.Invalid("password cannot be of zero length when passwordless binds are being denied")
	}
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	userDN, err := c.userDN(conn, username)
	if err != nil {
		return nil, err
	}
	if err := conn.Bind(userDN, password); err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
			return nil, errBadLogin
		}
		return nil, core.Errorf(core.CodeUnavailable, "ldap operation failed: binding as the user: %v", err)
	}
	// Group searches run as the bind account when there is one.
	if c.BindDN != "" {
		if err := conn.Bind(c.BindDN, c.BindPass); err != nil {
			return nil, core.Errorf(core.CodeUnavailable, "ldap operation failed: rebinding as binddn: %v", err)
		}
	}
	groups, err := c.groups(conn, userDN, username)
	if err != nil {
		return nil, err
	}
	name := username
	if !c.CaseSensitiveNames {
		name = strings.ToLower(username)
	}
	if um, err := b.getMapping(ctx, "user/", name); err != nil {
		return nil, err
	} else if um != nil {
		for _, g := range um.Groups {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
	}
	if len(c.AllowedGroups) > 0 && !anyGlob(c.AllowedGroups, groups) {
		return nil, core.Errorf(core.CodePermissionDenied, "user %q is not a member of any of the allowed groups %v", username, c.AllowedGroups)
	}
	policies := append([]string(nil), c.Policies...)
	add := func(m *mapping) {
		if m == nil {
			return
		}
		for _, p := range m.Policies {
			if !slices.Contains(policies, p) {
				policies = append(policies, p)
			}
		}
	}
	if um, err := b.getMapping(ctx, "user/", name); err != nil {
		return nil, err
	} else {
		add(um)
	}
	for _, g := range groups {
		gm, err := b.getMapping(ctx, "group/", g)
		if err != nil {
			return nil, err
		}
		add(gm)
	}
	p := c.Params
	p.Policies = policies
	a := p.Auth(name, map[string]string{"username": name})
	// The user name names the entity alias, as in Vault.
	a.Alias = &core.Alias{Name: name, Metadata: map[string]string{"name": name, "dn": userDN}}
	for _, g := range groups {
		a.GroupAliases = append(a.GroupAliases, &core.Alias{Name: g})
	}
	return &core.Response{Auth: a}, nil
}

func anyGlob(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if strings.EqualFold(p, v) || glob.Glob(p, v) {
				return true
			}
		}
	}
	return false
}

func (c *config) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tlsVersions[c.TLSMinVersion], InsecureSkipVerify: c.InsecureTLS} //nolint:gosec // insecure_tls is the operator's explicit choice, as in Vault
	if c.Certificate != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.Certificate)) {
			return nil, errors.New("certificate holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// dial connects to the first reachable URL (StartTLS when configured).
func (c *config) dial() (*goldap.Conn, error) {
	var errs []string
	timeout := c.RequestTimeout
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	for _, raw := range c.URLs {
		raw = strings.TrimSpace(raw)
		u, err := parseURL(raw)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		tc, err := c.tlsConfig(u.hostname)
		if err != nil {
			return nil, core.Errorf(core.CodeInternal, "ldap: %v", err)
		}
		conn, err := goldap.DialURL(raw, goldap.DialWithTLSConfig(tc), goldap.DialWithDialer(dialer(timeout)))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", raw, err))
			continue
		}
		conn.SetTimeout(timeout)
		if c.StartTLS && u.scheme == "ldap" {
			if err := conn.StartTLS(tc); err != nil {
				conn.Close()
				errs = append(errs, fmt.Sprintf("%s: StartTLS: %v", raw, err))
				continue
			}
		}
		return conn, nil
	}
	return nil, core.Errorf(core.CodeUnavailable, "ldap: cannot connect to the directory: %s", strings.Join(errs, "; "))
}

// userDN finds the entry to bind as.
func (c *config) userDN(conn *goldap.Conn, username string) (string, error) {
	switch {
	case c.BindDN != "" || c.DiscoverDN:
		if c.BindDN != "" {
			if err := conn.Bind(c.BindDN, c.BindPass); err != nil {
				return "", core.Errorf(core.CodeUnavailable, "ldap operation failed: binding as binddn: %v", err)
			}
		} else if err := conn.UnauthenticatedBind(""); err != nil {
			return "", core.Errorf(core.CodeUnavailable, "ldap operation failed: anonymous bind: %v", err)
		}
		filter, err := render(c.UserFilter, map[string]string{"UserAttr": c.UserAttr, "Username": goldap.EscapeFilter(username)})
		if err != nil {
			return "", core.Errorf(core.CodeInternal, "userfilter: %v", err)
		}
		res, err := conn.Search(goldap.NewSearchRequest(c.UserDN, goldap.ScopeWholeSubtree, goldap.DerefInSearching,
			2, 0, false, filter, []string{"dn"}, nil))
		if err != nil {
			if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
				return "", errBadLogin
			}
			return "", core.Errorf(core.CodeUnavailable, "ldap operation failed: searching for the user: %v", err)
		}
		if len(res.Entries) != 1 {
			return "", errBadLogin
		}
		return res.Entries[0].DN, nil
	case c.UPNDomain != "":
		return username + "@" + c.UPNDomain, nil
	}
	return fmt.Sprintf("%s=%s,%s", c.UserAttr, goldap.EscapeDN(username), c.UserDN), nil
}

// groups searches groupdn with groupfilter and returns the groupattr
// values of the matching entries.
func (c *config) groups(conn *goldap.Conn, userDN, username string) ([]string, error) {
	if c.GroupDN == "" {
		return nil, nil
	}
	filter, err := render(c.GroupFilter, map[string]string{"UserDN": goldap.EscapeFilter(userDN), "Username": goldap.EscapeFilter(username)})
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "groupfilter: %v", err)
	}
	res, err := conn.Search(goldap.NewSearchRequest(c.GroupDN, goldap.ScopeWholeSubtree, goldap.DerefInSearching,
		0, 0, false, filter, []string{c.GroupAttr}, nil))
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "ldap operation failed: searching for groups: %v", err)
	}
	var out []string
	for _, e := range res.Entries {
		for _, v := range e.GetAttributeValues(c.GroupAttr) {
			// A DN-valued attribute (memberOf) names the group by its first RDN.
			if dn, err := goldap.ParseDN(v); err == nil && len(dn.RDNs) > 0 && strings.Contains(v, "=") {
				v = dn.RDNs[0].Attributes[0].Value
			}
			if v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func render(tpl string, data map[string]string) (string, error) {
	t, err := template.New("filter").Option("missingkey=error").Parse(tpl)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

type ldapURL struct{ scheme, hostname string }

func parseURL(raw string) (ldapURL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") {
		return ldapURL{}, fmt.Errorf("%s: not an ldap:// or ldaps:// URL", raw)
	}
	return ldapURL{scheme: u.Scheme, hostname: u.Hostname()}, nil
}

func dialer(timeout time.Duration) *net.Dialer { return &net.Dialer{Timeout: timeout} }
