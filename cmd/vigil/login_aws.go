package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/auth/awsauth/awslogin"
)

// loginAWS signs sts:GetCallerIdentity with the caller's AWS credentials
// and sends the signed request (never the credentials) to
// auth/<mount>/login, in the body Vault's CLI sends.
//
// Options (K=V): role, region (us-east-1), header_value (the server's
// iam_server_id_header_value), sts_endpoint (the URL signed for, default
// the global STS endpoint), aws_access_key_id, aws_secret_access_key,
// aws_security_token (default: the AWS SDK's credential chain: environment,
// shared files, instance or task role).
func loginAWS(client *vaultapi.Client, mount string, data map[string]any) (*vaultapi.Secret, int) {
	opt := func(k string) string { v, _ := data[k].(string); return v }
	region := opt("region")
	if region == "" {
		region = "us-east-1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var creds aws.Credentials
	if id := opt("aws_access_key_id"); id != "" {
		creds = aws.Credentials{AccessKeyID: id, SecretAccessKey: opt("aws_secret_access_key"), SessionToken: opt("aws_security_token")}
	} else {
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return nil, fail("loading AWS credentials: %v", err)
		}
		if creds, err = cfg.Credentials.Retrieve(ctx); err != nil {
			return nil, fail("loading AWS credentials: %v", err)
		}
	}
	body, err := awslogin.Data(ctx, creds, awslogin.Options{Region: region, STSEndpoint: opt("sts_endpoint"), ServerID: opt("header_value")})
	if err != nil {
		return nil, fail("%v", err)
	}
	if r := opt("role"); r != "" {
		body["role"] = r
	}
	sec, err := client.Logical().Write("auth/"+mount+"/login", body)
	if err != nil {
		return nil, apiError("authenticating", err)
	}
	return sec, 0
}
