// Package mototest creates IAM users, roles and role sessions in the
// moto_server the tests run (.ci/services/moto.sh), through the AWS Query
// API. moto does not check signatures but routes a call by the service
// named in its signature scope, which these calls name.
package mototest

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Account is moto's default AWS account.
const Account = "123456789012"

// Call posts one Query API call to service at endpoint and decodes the XML
// answer into out (when not nil).
func Call(tb testing.TB, endpoint, service string, params url.Values, out any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", strings.NewReader(params.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/"+service+
		"/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("moto %s: %v", params.Get("Action"), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("moto %s: HTTP %d: %s", params.Get("Action"), resp.StatusCode, b)
	}
	if out != nil {
		if err := xml.Unmarshal(b, out); err != nil {
			tb.Fatalf("moto %s: %v\n%s", params.Get("Action"), err, b)
		}
	}
}

// User creates an IAM user with an access key and returns the key.
func User(tb testing.TB, endpoint, name string) aws.Credentials {
	tb.Helper()
	Call(tb, endpoint, "iam", url.Values{"Action": {"CreateUser"}, "UserName": {name}, "Version": {"2010-05-08"}}, nil)
	var k struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	Call(tb, endpoint, "iam", url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}, "Version": {"2010-05-08"}}, &k)
	return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
}

// AssumedRole creates the IAM role /apps/<role> and returns credentials of
// a session of it named session.
func AssumedRole(tb testing.TB, endpoint, role, session string) aws.Credentials {
	tb.Helper()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`
	Call(tb, endpoint, "iam", url.Values{"Action": {"CreateRole"}, "RoleName": {role}, "Path": {"/apps/"},
		"AssumeRolePolicyDocument": {trust}, "Version": {"2010-05-08"}}, nil)
	var c struct {
		ID      string `xml:"AssumeRoleResult>Credentials>AccessKeyId"`
		Secret  string `xml:"AssumeRoleResult>Credentials>SecretAccessKey"`
		Session string `xml:"AssumeRoleResult>Credentials>SessionToken"`
	}
	Call(tb, endpoint, "sts", url.Values{"Action": {"AssumeRole"}, "RoleArn": {"arn:aws:iam::" + Account + ":role/apps/" + role},
		"RoleSessionName": {session}, "Version": {"2011-06-15"}}, &c)
	return aws.Credentials{AccessKeyID: c.ID, SecretAccessKey: c.Secret, SessionToken: c.Session}
}
