// Package autosnapshot takes Raft snapshots on a schedule and proves they
// restore, with Vault Enterprise's API:
//
//	POST/GET/DELETE sys/storage/raft/snapshot-auto/config/:name   a schedule
//	LIST            sys/storage/raft/snapshot-auto/config         the schedules
//	GET             sys/storage/raft/snapshot-auto/status/:name   its last run
//	POST            sys/storage/raft/snapshot-auto/drill/:name    restore drill now
//	GET             sys/storage/raft/snapshot-auto/drill/:name    drill history
//
// A snapshot is the archive of sys/storage/raft/snapshot: every value in
// it is barrier ciphertext, and its SHA256SUMS are sealed with a key only
// this cluster holds. Its meta.json also carries the checkpoints of every
// node's audit chain and the counts (mounts, secrets, policies, leases)
// read from the very state it holds. Each stored object's SHA-256 is
// recorded in the barrier at upload.
//
// Scheduled work — taking a snapshot, pruning to `retain`, a scheduled
// drill — is done by Internal routes that the server's job scheduler calls
// through the Dispatcher (see ScheduledJobs), so every run is in the audit
// trail and nothing runs when the trail cannot record it. Only the active
// node runs them.
package autosnapshot

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
)

// Storage types (Vault's names).
const (
	StorageLocal = "local"
	StorageS3    = "aws-s3"
)

// DefaultFilePrefix names the objects when file_prefix is not set.
const DefaultFilePrefix = "vigil-snapshot"

// MinInterval is the shortest schedule accepted.
const MinInterval = time.Second

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Config is one named schedule (sys/storage/raft/snapshot-auto/config/:name).
type Config struct {
	Name        string        `json:"name"`
	Interval    time.Duration `json:"interval"`
	Retain      int           `json:"retain"`
	StorageType string        `json:"storage_type"`
	// PathPrefix is the folder (local) or the key prefix in the bucket (S3).
	PathPrefix string `json:"path_prefix"`
	FilePrefix string `json:"file_prefix"`
	// LocalMaxSpace bounds the bytes the local folder's snapshots of this
	// schedule may take (0: no bound); a snapshot that would exceed it is
	// not written.
	LocalMaxSpace int64 `json:"local_max_space,omitempty"`

	S3Bucket         string `json:"aws_s3_bucket,omitempty"`
	S3Region         string `json:"aws_s3_region,omitempty"`
	S3Endpoint       string `json:"aws_s3_endpoint,omitempty"`
	S3ForcePathStyle bool   `json:"aws_s3_force_path_style,omitempty"`
	S3DisableTLS     bool   `json:"aws_s3_disable_tls,omitempty"`
	S3SSE            bool   `json:"aws_s3_server_side_encryption,omitempty"`
	S3KMSKey         string `json:"aws_s3_kms_key,omitempty"`
	// Explicit credentials; when empty the AWS SDK's usual chain is used
	// (AWS_* environment variables, shared config and credentials files,
	// web identity, instance or task role).
	AccessKeyID     string `json:"aws_access_key_id,omitempty"`
	SecretAccessKey string `json:"aws_secret_access_key,omitempty"`
	SessionToken    string `json:"aws_session_token,omitempty"`

	// DrillInterval schedules restore drills of the latest snapshot (0:
	// drills run only on request).
	DrillInterval time.Duration `json:"drill_interval,omitempty"`
}

// Validate applies defaults and checks c, returning a CodeInvalid error.
func (c *Config) Validate() error {
	if !nameRE.MatchString(c.Name) {
		return core.Invalid("snapshot-auto: invalid name %q", c.Name)
	}
	if c.Interval < MinInterval {
		return core.Invalid("snapshot-auto: interval must be at least %s", MinInterval)
	}
	if c.Retain == 0 {
		c.Retain = 1
	}
	if c.Retain < 0 {
		return core.Invalid("snapshot-auto: retain must be positive")
	}
	if c.FilePrefix == "" {
		c.FilePrefix = DefaultFilePrefix
	}
	if strings.ContainsAny(c.FilePrefix, `/\`) || strings.HasPrefix(c.FilePrefix, ".") {
		return core.Invalid("snapshot-auto: file_prefix must be a plain name")
	}
	if c.DrillInterval < 0 {
		return core.Invalid("snapshot-auto: drill_interval must not be negative")
	}
	switch c.StorageType {
	case StorageLocal:
		if c.PathPrefix == "" || !strings.HasPrefix(c.PathPrefix, "/") {
			return core.Invalid("snapshot-auto: path_prefix must be an absolute folder for storage_type=local")
		}
		if c.LocalMaxSpace < 0 {
			return core.Invalid("snapshot-auto: local_max_space must not be negative")
		}
	case StorageS3:
		if c.S3Bucket == "" {
			return core.Invalid("snapshot-auto: aws_s3_bucket is required for storage_type=aws-s3")
		}
		if c.S3Region == "" {
			return core.Invalid("snapshot-auto: aws_s3_region is required for storage_type=aws-s3")
		}
		if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
			return core.Invalid("snapshot-auto: give both aws_access_key_id and aws_secret_access_key, or neither")
		}
		c.PathPrefix = strings.TrimPrefix(c.PathPrefix, "/")
	case "":
		return core.Invalid("snapshot-auto: storage_type is required (%s or %s)", StorageLocal, StorageS3)
	default:
		return core.Invalid("snapshot-auto: unsupported storage_type %q (this server supports %s and %s)", c.StorageType, StorageLocal, StorageS3)
	}
	return nil
}

// public is the configuration as GET returns it: the secret access key
// and the session token are never returned.
func (c *Config) public() map[string]any {
	d := map[string]any{
		"interval": int64(c.Interval / time.Second), "retain": c.Retain, "storage_type": c.StorageType,
		"path_prefix": c.PathPrefix, "file_prefix": c.FilePrefix,
		"drill_interval": int64(c.DrillInterval / time.Second),
	}
	switch c.StorageType {
	case StorageLocal:
		d["local_max_space"] = c.LocalMaxSpace
	case StorageS3:
		d["aws_s3_bucket"], d["aws_s3_region"], d["aws_s3_endpoint"] = c.S3Bucket, c.S3Region, c.S3Endpoint
		d["aws_s3_force_path_style"], d["aws_s3_disable_tls"] = c.S3ForcePathStyle, c.S3DisableTLS
		d["aws_s3_server_side_encryption"], d["aws_s3_kms_key"] = c.S3SSE, c.S3KMSKey
		d["aws_access_key_id"] = c.AccessKeyID
	}
	return d
}

// objectName is the name of a snapshot taken at t: the file prefix and the
// UTC time in nanoseconds, zero-padded so that names sort by time.
func (c *Config) objectName(t time.Time) string {
	return fmt.Sprintf("%s-%020d.snap", c.FilePrefix, t.UnixNano())
}

// ours reports whether name is a snapshot object of this schedule.
func (c *Config) ours(name string) bool {
	rest, ok := strings.CutPrefix(name, c.FilePrefix+"-")
	if !ok {
		return false
	}
	digits, ok := strings.CutSuffix(rest, ".snap")
	if !ok || len(digits) != 20 {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
