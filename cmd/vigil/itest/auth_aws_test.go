package itest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/auth/awsauth/awslogin"
	"github.com/vigilsec/vigil/core/auth/awsauth/mototest"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

const motoAccount = mototest.Account

// TestAWSIAMLogin: clients sign sts:GetCallerIdentity with their AWS
// credentials (awslogin, what `vigil login -method=aws` sends, in Vault's
// CLI body format); Vigil forwards the signed request to STS (moto_server)
// and binds the ARN STS answers with. An assumed-role session binds as
// its role. A principal, account or server ID the role does not allow, and
// a request that is not GetCallerIdentity, are refused and audited.
func TestAWSIAMLogin(t *testing.T) {
	moto := testsvc.Env(t, "VIGIL_TEST_MOTO_ENDPOINT")
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "aws", "aws")
	mustWriteAPI(t, c, "auth/aws/config/client", map[string]any{"sts_endpoint": moto})
	mustWriteAPI(t, c, "auth/aws/config/identity", map[string]any{"iam_alias": "full_arn"})
	// moto keeps its state while it runs: names are new on every run.
	user := "carol-" + uuid.NewString()[:8]
	userARN := "arn:aws:iam::" + motoAccount + ":user/" + user
	mustWriteAPI(t, c, "auth/aws/role/people", map[string]any{"auth_type": "iam", "bound_iam_principal_arn": userARN,
		"token_policies": "app"})
	mustWriteAPI(t, c, "auth/aws/role/apps", map[string]any{"bound_iam_principal_arn": "arn:aws:iam::" + motoAccount + ":role/app-*",
		"bound_account_id": motoAccount, "token_policies": "app"})
	mustWriteAPI(t, c, "auth/aws/role/other-account", map[string]any{"bound_account_id": "999999999999", "token_policies": "app"})
	carol := mototest.User(t, moto, user)
	app := mototest.AssumedRole(t, moto, "app-"+strings.ToLower(user), "i-0abc")

	anon := s.NewClient("")
	const path = "auth/aws/login"
	login := func(creds aws.Credentials, role string, o awslogin.Options) (*vaultapi.Secret, error) {
		data, err := awslogin.Data(context.Background(), creds, o)
		if err != nil {
			t.Fatal(err)
		}
		data["role"] = role
		return anon.Logical().Write(path, data)
	}
	sec, err := login(carol, "people", awslogin.Options{})
	wantLogin(t, s.Server, sec, err, acc, userARN, "app", "default")
	if sec.Auth.Metadata["canonical_arn"] != userARN || sec.Auth.Metadata["account_id"] != motoAccount {
		t.Fatalf("metadata %v", sec.Auth.Metadata)
	}

	sec, err = login(app, "apps", awslogin.Options{})
	wantLogin(t, s.Server, sec, err, acc, "arn:aws:sts::"+motoAccount+":assumed-role/app-"+strings.ToLower(user)+"/i-0abc", "app")
	if got := sec.Auth.Metadata["canonical_arn"]; got != "arn:aws:iam::"+motoAccount+":role/app-"+strings.ToLower(user) {
		t.Fatalf("canonical arn %q", got)
	}

	t.Run("wrong ARN", func(t *testing.T) {
		_, err := login(carol, "apps", awslogin.Options{})
		wantRefused(t, dir, err, path, "does not belong to the role")
	})
	t.Run("wrong account", func(t *testing.T) {
		_, err := login(carol, "other-account", awslogin.Options{})
		wantRefused(t, dir, err, path, `account ID "123456789012" does not belong`)
	})
	t.Run("not GetCallerIdentity", func(t *testing.T) {
		data, _ := awslogin.Data(context.Background(), carol, awslogin.Options{})
		data["role"] = "people"
		data["iam_request_body"] = "QWN0aW9uPUxpc3RVc2VycyZWZXJzaW9uPTIwMTAtMDUtMDg=" // Action=ListUsers&Version=2010-05-08
		_, err := anon.Logical().Write(path, data)
		wantRefused(t, dir, err, path, "must be a GetCallerIdentity call")
	})
	t.Run("server ID header", func(t *testing.T) {
		mustWriteAPI(t, c, "auth/aws/config/client", map[string]any{"iam_server_id_header_value": "vigil.example.test"})
		_, err := login(carol, "people", awslogin.Options{})
		wantRefused(t, dir, err, path, "expected X-Vault-AWS-IAM-Server-ID header value")
		_, err = login(carol, "people", awslogin.Options{ServerID: "vigil.example.test"})
		if err != nil {
			t.Fatalf("login with the server ID: %v", err)
		}
	})
	t.Run("ec2 roles refused", func(t *testing.T) {
		_, err := c.Logical().Write("auth/aws/role/ec2", map[string]any{"auth_type": "ec2", "bound_account_id": motoAccount})
		wantStatus(t, err, 400)
	})
}
