package awsauth

import (
	"context"
	"net/url"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// DefaultSTSEndpoint is where signed requests go when config/client names
// no sts_endpoint (the global endpoint, as in Vault).
const DefaultSTSEndpoint = "https://sts.amazonaws.com"

// ServerIDHeader is the header a client signs to bind its request to one
// Vigil deployment (iam_server_id_header_value), preventing replay of the
// signed request against another server.
const ServerIDHeader = "X-Vault-AWS-IAM-Server-ID"

// clientConfig is how the mount reaches STS.
type clientConfig struct {
	STSEndpoint   string `json:"sts_endpoint,omitempty"`
	STSRegion     string `json:"sts_region,omitempty"`
	ServerIDValue string `json:"iam_server_id_header_value,omitempty"`
	MaxRetries    int    `json:"max_retries"`
}

// identityConfig chooses what names the entity alias of an IAM login.
type identityConfig struct {
	IAMAlias string `json:"iam_alias"`
}

// iam_alias values, as in Vault.
const (
	aliasRoleID       = "role_id"
	aliasUniqueID     = "unique_id"
	aliasFullARN      = "full_arn"
	aliasCanonicalARN = "canonical_arn"
)

func (b *Backend) clientConfigRoute() framework.Route {
	return framework.Route{Pattern: `config/client`, ExistenceCheck: b.clientConfigExists, Fields: map[string]*framework.FieldSchema{
		"sts_endpoint":               {Type: framework.TypeString},
		"sts_region":                 {Type: framework.TypeString},
		"iam_server_id_header_value": {Type: framework.TypeString},
		"max_retries":                {Type: framework.TypeInt, Default: -1},
		"access_key":                 {Type: framework.TypeString},
		"secret_key":                 {Type: framework.TypeString},
	}, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readClientConfig, core.OpCreate: b.writeClientConfig,
		core.OpUpdate: b.writeClientConfig, core.OpDelete: b.deleteClientConfig}}
}

func (b *Backend) getClientConfig(ctx context.Context) (*clientConfig, error) {
	var c clientConfig
	ok, err := storage.GetJSON(ctx, b.env.Storage, "config/client", &c)
	if err != nil || !ok {
		return &clientConfig{MaxRetries: -1}, err
	}
	return &c, nil
}

func (b *Backend) clientConfigExists(ctx context.Context, _ *core.Request, _ *framework.FieldData) (bool, error) {
	v, err := b.env.Storage.Get(ctx, "config/client")
	return v != nil, err
}

func (b *Backend) readClientConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	v, err := b.env.Storage.Get(ctx, "config/client")
	if err != nil || v == nil {
		return nil, err
	}
	c, err := b.getClientConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"sts_endpoint": c.STSEndpoint, "sts_region": c.STSRegion,
		"iam_server_id_header_value": c.ServerIDValue, "max_retries": c.MaxRetries, "access_key": ""}}, nil
}

func (b *Backend) writeClientConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.getClientConfig(ctx)
	if err != nil {
		return nil, err
	}
	if d.String("access_key") != "" || d.String("secret_key") != "" {
		return nil, core.Invalid("access_key and secret_key are not used: IAM logins need no AWS credentials on the server")
	}
	if d.Has("sts_endpoint") {
		c.STSEndpoint = d.String("sts_endpoint")
		if c.STSEndpoint != "" {
			u, err := url.Parse(c.STSEndpoint)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, core.Invalid("sts_endpoint %q is not an http(s) URL", c.STSEndpoint)
			}
		}
	}
	if d.Has("sts_region") {
		c.STSRegion = d.String("sts_region")
	}
	if d.Has("iam_server_id_header_value") {
		c.ServerIDValue = d.String("iam_server_id_header_value")
	}
	if d.Has("max_retries") {
		c.MaxRetries = d.Int("max_retries")
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, "config/client", c)
}

func (b *Backend) deleteClientConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	return nil, b.env.Storage.Delete(ctx, "config/client")
}

func (b *Backend) identityConfigRoute() framework.Route {
	return framework.Route{Pattern: `config/identity`, Fields: map[string]*framework.FieldSchema{
		"iam_alias":    {Type: framework.TypeString},
		"iam_metadata": {Type: framework.TypeCommaStringSlice},
		"ec2_alias":    {Type: framework.TypeString},
	}, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readIdentityConfig, core.OpUpdate: b.writeIdentityConfig}}
}

func (b *Backend) getIdentityConfig(ctx context.Context) (*identityConfig, error) {
	c := identityConfig{IAMAlias: aliasRoleID}
	_, err := storage.GetJSON(ctx, b.env.Storage, "config/identity", &c)
	return &c, err
}

func (b *Backend) readIdentityConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.getIdentityConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"iam_alias": c.IAMAlias, "iam_metadata": []string{"default"},
		"ec2_alias": aliasRoleID, "ec2_metadata": []string{"default"}}}, nil
}

func (b *Backend) writeIdentityConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.getIdentityConfig(ctx)
	if err != nil {
		return nil, err
	}
	if d.Has("iam_alias") {
		switch a := d.String("iam_alias"); a {
		case aliasRoleID, aliasUniqueID, aliasFullARN, aliasCanonicalARN:
			c.IAMAlias = a
		default:
			return nil, core.Invalid("invalid iam_alias %q: must be role_id, unique_id, full_arn or canonical_arn", a)
		}
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, "config/identity", c)
}
