package autosnapshot

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Target stores snapshots in an S3 bucket (or an S3-compatible server
// given by aws_s3_endpoint) under the path prefix.
type S3Target struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	sse    bool
	kmsKey string
}

var _ Target = (*S3Target)(nil)

// NewS3Target returns the S3 target of c (storage_type=aws-s3).
// Credentials are c's when given, else the AWS SDK's default chain.
func NewS3Target(ctx context.Context, c *Config) (*S3Target, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(c.S3Region)}
	if c.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("snapshot-auto: aws configuration: %w", err)
	}
	endpoint := c.S3Endpoint
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if c.S3DisableTLS {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = c.S3ForcePathStyle
		// The object's own SHA-256 is sent and checked (ChecksumSHA256);
		// no second, SDK-chosen checksum on top.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	p := strings.Trim(c.PathPrefix, "/")
	if p != "" {
		p += "/"
	}
	return &S3Target{client: client, bucket: c.S3Bucket, prefix: p, sse: c.S3SSE, kmsKey: c.S3KMSKey}, nil
}

// Put uploads the object in one PutObject with its SHA-256 as the
// request's checksum, so that the server rejects a body that changed in
// transit, and as the object's metadata "sha256".
func (t *S3Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, sum string) error {
	in := &s3.PutObjectInput{Bucket: aws.String(t.bucket), Key: aws.String(t.prefix + name), Body: body,
		ContentLength: aws.Int64(size), ContentType: aws.String("application/gzip"),
		Metadata: map[string]string{"sha256": sum}}
	if raw, err := hex.DecodeString(sum); err == nil && len(raw) == 32 {
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(raw))
	}
	switch {
	case t.kmsKey != "":
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(t.kmsKey)
	case t.sse:
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	}
	if _, err := t.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("snapshot-auto: upload %s: %w", t.URL(name), err)
	}
	return nil
}

// Get downloads the object.
func (t *S3Target) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := t.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(t.bucket), Key: aws.String(t.prefix + name)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, ErrObjectNotFound
		}
		return nil, fmt.Errorf("snapshot-auto: download %s: %w", t.URL(name), err)
	}
	return out.Body, nil
}

// List pages through the objects under the path prefix starting with prefix.
func (t *S3Target) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	pages := s3.NewListObjectsV2Paginator(t.client, &s3.ListObjectsV2Input{Bucket: aws.String(t.bucket), Prefix: aws.String(t.prefix + prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("snapshot-auto: list s3://%s/%s: %w", t.bucket, t.prefix, err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), t.prefix)
			if name == "" || strings.Contains(name, "/") {
				continue
			}
			obj := Object{Name: name, Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				obj.Modified = o.LastModified.UTC()
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

// Delete removes the object.
func (t *S3Target) Delete(ctx context.Context, name string) error {
	if _, err := t.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(t.bucket), Key: aws.String(t.prefix + name)}); err != nil {
		return fmt.Errorf("snapshot-auto: delete %s: %w", t.URL(name), err)
	}
	return nil
}

// URL is s3://bucket/key.
func (t *S3Target) URL(name string) string { return "s3://" + t.bucket + "/" + t.prefix + name }
