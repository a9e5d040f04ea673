package autosnapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vigilsec/vigil/core/testsvc"
)

// MustS3Config returns an aws-s3 configuration on the moto server with a
// new, empty bucket of its own.
func MustS3Config(tb testing.TB, name string) *Config {
	tb.Helper()
	endpoint := testsvc.Env(tb, "VIGIL_TEST_MOTO_ENDPOINT")
	region, ok := testsvc.Lookup("VIGIL_TEST_MOTO_REGION")
	if !ok {
		region = "us-east-1"
	}
	c := &Config{Name: name, Interval: time.Hour, Retain: 3, StorageType: StorageS3, PathPrefix: "vigil/backups",
		S3Bucket: fmt.Sprintf("vigil-test-%d", time.Now().UnixNano()), S3Region: region, S3Endpoint: endpoint,
		S3ForcePathStyle: true, AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	if err := c.Validate(); err != nil {
		tb.Fatal(err)
	}
	t, err := NewS3Target(context.Background(), c)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := t.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(c.S3Bucket)}); err != nil {
		tb.Fatalf("create bucket on %s: %v", endpoint, err)
	}
	return c
}

// MustLocalConfig returns a local configuration in a temporary folder.
func MustLocalConfig(tb testing.TB, name string) *Config {
	tb.Helper()
	c := &Config{Name: name, Interval: time.Hour, Retain: 3, StorageType: StorageLocal, PathPrefix: tb.TempDir()}
	if err := c.Validate(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// testTarget runs the Target contract against one implementation.
func testTarget(t *testing.T, c *Config) {
	ctx := context.Background()
	tg, err := openTarget(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if objs, err := tg.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("empty target lists %v, %v", objs, err)
	}
	put := func(name string, body []byte) {
		t.Helper()
		sum := sha256.Sum256(body)
		if err := tg.Put(ctx, name, bytes.NewReader(body), int64(len(body)), hex.EncodeToString(sum[:])); err != nil {
			t.Fatalf("Put %s: %v", name, err)
		}
	}
	big := make([]byte, 3<<20+17)
	_, _ = rand.Read(big)
	put("snap-1.snap", []byte("first"))
	put("snap-2.snap", big)
	put("other.txt", []byte("not ours"))
	put("snap-1.snap", []byte("first, replaced"))

	objs, err := tg.List(ctx, "snap-")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
		if o.Name == "snap-2.snap" && o.Size != int64(len(big)) {
			t.Errorf("size of snap-2: %d, want %d", o.Size, len(big))
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"snap-1.snap", "snap-2.snap"}) {
		t.Fatalf("List(snap-) = %v", names)
	}
	for name, want := range map[string][]byte{"snap-1.snap": []byte("first, replaced"), "snap-2.snap": big} {
		rc, err := tg.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get %s: %d bytes, %v", name, len(got), err)
		}
	}
	if _, err := tg.Get(ctx, "missing.snap"); !errors.Is(err, ErrObjectNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := tg.Delete(ctx, "snap-1.snap"); err != nil {
		t.Fatal(err)
	}
	if err := tg.Delete(ctx, "snap-1.snap"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if objs, _ := tg.List(ctx, "snap-"); len(objs) != 1 || objs[0].Name != "snap-2.snap" {
		t.Fatalf("after delete: %v", objs)
	}
	if u := tg.URL("x.snap"); !strings.HasSuffix(u, "x.snap") || !strings.Contains(u, "://") {
		t.Errorf("URL = %q", u)
	}
}

func TestLocalTarget(t *testing.T) { testTarget(t, MustLocalConfig(t, "local")) }

func TestS3Target(t *testing.T) {
	c := MustS3Config(t, "s3")
	testTarget(t, c)
	tg, _ := NewS3Target(context.Background(), c)
	if u := tg.URL("x.snap"); u != "s3://"+c.S3Bucket+"/vigil/backups/x.snap" {
		t.Errorf("URL = %q", u)
	}
}

func TestLocalTargetMaxSpace(t *testing.T) {
	c := MustLocalConfig(t, "local")
	c.LocalMaxSpace = 10
	tg, _ := NewLocalTarget(c)
	ctx := context.Background()
	if err := tg.Put(ctx, "a.snap", strings.NewReader("123456"), 6, ""); err != nil {
		t.Fatal(err)
	}
	if err := tg.Put(ctx, "b.snap", strings.NewReader("123456"), 6, ""); err == nil {
		t.Fatal("local_max_space exceeded without an error")
	}
	if objs, _ := tg.List(ctx, ""); len(objs) != 1 {
		t.Fatalf("a refused object left files: %v", objs)
	}
}
