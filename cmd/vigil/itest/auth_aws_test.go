package itest

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/auth/awsauth/awslogin"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// motoAccount is moto's default AWS account.
const motoAccount = "123456789012"

// motoCall posts an AWS Query API call to moto_server (which does not
// check signatures, but routes by the service named in the signature's
// scope) and decodes the XML answer into out.
func motoCall(t *testing.T, endpoint, service string, params url.Values, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/"+service+
		"/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("moto %s: %v", params.Get("Action"), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto %s: HTTP %d: %s", params.Get("Action"), resp.StatusCode, b)
	}
	if out != nil {
		if err := xml.Unmarshal(b, out); err != nil {
			t.Fatalf("moto %s: %v\n%s", params.Get("Action"), err, b)
		}
	}
}

// motoUser creates an IAM user with an access key in moto.
func motoUser(t *testing.T, endpoint, name string) aws.Credentials {
	t.Helper()
	motoCall(t, endpoint, "iam", url.Values{"Action": {"CreateUser"}, "UserName": {name}, "Version": {"2010-05-08"}}, nil)
	var k struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	motoCall(t, endpoint, "iam", url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}, "Version": {"2010-05-08"}}, &k)
	return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
}

// motoAssumedRole creates an IAM role and returns session credentials for it.
func motoAssumedRole(t *testing.T, endpoint, role string) aws.Credentials {
	t.Helper()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`
	motoCall(t, endpoint, "iam", url.Values{"Action": {"CreateRole"}, "RoleName": {role}, "Path": {"/apps/"},
		"AssumeRolePolicyDocument": {trust}, "Version": {"2010-05-08"}}, nil)
	var c struct {
		ID      string `xml:"AssumeRoleResult>Credentials>AccessKeyId"`
		Secret  string `xml:"AssumeRoleResult>Credentials>SecretAccessKey"`
		Session string `xml:"AssumeRoleResult>Credentials>SessionToken"`
	}
	motoCall(t, endpoint, "sts", url.Values{"Action": {"AssumeRole"}, "RoleArn": {"arn:aws:iam::" + motoAccount + ":role/apps/" + role},
		"RoleSessionName": {"i-0abc"}, "Version": {"2011-06-15"}}, &c)
	return aws.Credentials{AccessKeyID: c.ID, SecretAccessKey: c.Secret, SessionToken: c.Session}
}

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
	carol := motoUser(t, moto, user)
	app := motoAssumedRole(t, moto, "app-"+strings.ToLower(user))

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
