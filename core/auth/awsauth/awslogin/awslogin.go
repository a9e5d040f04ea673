// Package awslogin builds the body of an AWS IAM login: an
// sts:GetCallerIdentity request signed (SigV4) with the caller's AWS
// credentials, in the fields Vault's CLI sends (iam_http_request_method,
// iam_request_url, iam_request_body, iam_request_headers, base64). The
// credentials themselves never leave the client.
package awslogin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Body is the GetCallerIdentity call a login signs.
const Body = "Action=GetCallerIdentity&Version=2011-06-15"

// Options shape the signed request.
type Options struct {
	// Region signs the request (default us-east-1).
	Region string
	// STSEndpoint is the URL the request is signed for (default the
	// global https://sts.amazonaws.com). The server forwards the request
	// to its own configured endpoint, keeping this host.
	STSEndpoint string
	// ServerID, when set, is signed as the X-Vault-AWS-IAM-Server-ID header
	// (the server's iam_server_id_header_value).
	ServerID string
	// Now is the signing time (default time.Now).
	Now func() time.Time
}

// Data returns the login fields for creds (add "role").
func Data(ctx context.Context, creds aws.Credentials, o Options) (map[string]any, error) {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.STSEndpoint == "" {
		o.STSEndpoint = "https://sts.amazonaws.com"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.STSEndpoint, "/")+"/", strings.NewReader(Body))
	if err != nil {
		return nil, fmt.Errorf("aws login: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if o.ServerID != "" {
		req.Header.Set("X-Vault-AWS-IAM-Server-ID", o.ServerID)
	}
	sum := sha256.Sum256([]byte(Body))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", o.Region, o.Now().UTC()); err != nil {
		return nil, fmt.Errorf("aws login: signing: %w", err)
	}
	hj, err := json.Marshal(req.Header)
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString
	return map[string]any{
		"iam_http_request_method": http.MethodPost,
		"iam_request_url":         enc([]byte(req.URL.String())),
		"iam_request_body":        enc([]byte(Body)),
		"iam_request_headers":     enc(hj),
	}, nil
}
