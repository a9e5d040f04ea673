package autosnapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/autosnapshot"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mustBucket creates a fresh bucket on the moto server.
func mustBucket(t *testing.T) (*s3.Client, string, string, string) {
	t.Helper()
	endpoint := testsvc.Env(t, "VIGIL_TEST_MOTO_ENDPOINT")
	region, ok := testsvc.Lookup("VIGIL_TEST_MOTO_REGION")
	if !ok {
		region = "us-east-1"
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "secret", "")))
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
	bucket := fmt.Sprintf("vigil-drill-%d", time.Now().UnixNano())
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return c, bucket, endpoint, region
}

func listKeys(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// runJobs runs the server's scheduled jobs once, as its scheduler does
// about once a minute: internal requests through the Dispatcher.
func runJobs(t *testing.T, s *servertest.Server) {
	t.Helper()
	if err := s.RunScheduledJobs(context.Background()); err != nil {
		t.Fatalf("scheduled jobs: %v", err)
	}
}

// hipaaDrillSection reads the HIPAA report (JSON) and returns its
// data-backup section.
func hipaaDrillSection(t *testing.T, c *vaultapi.Client) reports.Section {
	t.Helper()
	resp, err := c.Logical().ReadRawWithData("sys/reports/hipaa", map[string][]string{"format": {"json"}})
	if err != nil {
		t.Fatalf("hipaa report: %v", err)
	}
	defer resp.Body.Close()
	var r reports.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Sections {
		if s.ID == "hipaa-164.308(a)(7)(ii)(A)" {
			return s
		}
	}
	t.Fatalf("hipaa report has no data-backup section")
	return reports.Section{}
}

func checkStatus(t *testing.T, s *servertest.Server, id string) string {
	t.Helper()
	sec, err := s.Client.Logical().Read("sys/compliance/checks")
	if err != nil {
		t.Fatal(err)
	}
	checks, _ := sec.Data["checks"].([]any)
	for _, c := range checks {
		m := c.(map[string]any)
		if m["id"] == id {
			return m["status"].(string)
		}
	}
	t.Fatalf("check %s not found", id)
	return ""
}

func TestScheduledSnapshotsToS3RetentionAndDrills(t *testing.T) {
	s3c, bucket, endpoint, region := mustBucket(t)
	clk := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true, Now: clk.Now})
	c := s.Client
	auditLog := s.Dir + "/audit.log"
	if err := c.Sys().EnableAuditWithOptions("file", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": auditLog}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := c.Logical().Write(fmt.Sprintf("secret/data/app/s%d", i), map[string]any{"data": map[string]any{"v": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Logical().Write("sys/storage/raft/snapshot-auto/config/offsite", map[string]any{
		"interval": "1h", "retain": 3, "storage_type": "aws-s3", "path_prefix": "prod/vigil",
		"aws_s3_bucket": bucket, "aws_s3_region": region, "aws_s3_endpoint": endpoint, "aws_s3_force_path_style": true,
		"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "secret", "drill_interval": "24h",
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.Logical().Read("sys/storage/raft/snapshot-auto/config/offsite")
	if err != nil || cfg.Data["aws_secret_access_key"] != nil || cfg.Data["storage_type"] != "aws-s3" {
		t.Fatalf("config read back: %v, %v", cfg, err)
	}

	// The job's routes serve only Vigil's own internal requests, even to root.
	for _, p := range []string{"sys/storage/raft/snapshot-auto/run/offsite", "sys/storage/raft/snapshot-auto/scheduled-drill/offsite"} {
		var re *vaultapi.ResponseError
		if _, err := c.Logical().Write(p, nil); !errors.As(err, &re) || re.StatusCode/100 != 4 {
			t.Fatalf("client write %s: %v, want a 4xx", p, err)
		}
	}
	if _, err := c.Logical().Read("sys/storage/raft/snapshot-auto/scan"); err == nil {
		if keys := listKeys(t, s3c, bucket); len(keys) != 0 {
			t.Fatalf("objects before any scheduled run: %v", keys)
		}
	}

	// Five scheduled runs, an interval apart, with writes in between.
	for i := range 5 {
		runJobs(t, s)
		if _, err := c.Logical().Write(fmt.Sprintf("secret/data/app/later%d", i), map[string]any{"data": map[string]any{"v": i}}); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour + time.Second)
	}
	keys := listKeys(t, s3c, bucket)
	if len(keys) != 3 {
		t.Fatalf("retain=3 kept %d objects: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "prod/vigil/"+autosnapshot.DefaultFilePrefix+"-") {
			t.Errorf("object %q", k)
		}
	}
	st, err := c.Logical().Read("sys/storage/raft/snapshot-auto/status/offsite")
	if err != nil {
		t.Fatal(err)
	}
	if st.Data["last_snapshot_error"] != "" || fmt.Sprint(st.Data["consecutive_errors"]) != "0" ||
		!strings.HasSuffix(st.Data["last_snapshot_url"].(string), keys[len(keys)-1]) {
		t.Fatalf("status %v, objects %v", st.Data, keys)
	}

	// The drill scheduled after the first snapshot ran and passed.
	hist, err := c.Logical().Read("sys/storage/raft/snapshot-auto/drill/offsite")
	if err != nil {
		t.Fatal(err)
	}
	drills := hist.Data["drills"].([]any)
	first := drills[len(drills)-1].(map[string]any)
	if first["trigger"] != autosnapshot.TriggerSchedule || first["passed"] != true {
		t.Fatalf("scheduled drill: %v", first)
	}

	// A drill on request passes on the latest real snapshot, taken before
	// the fifth later write: 5 + 4 KV secrets.
	sec, err := c.Logical().Write("sys/storage/raft/snapshot-auto/drill/offsite", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sec.Data
	exp, got := d["expected"].(map[string]any), d["restored"].(map[string]any)
	if d["passed"] != true || d["key_source"] != "root-key" || fmt.Sprint(exp) != fmt.Sprint(got) ||
		fmt.Sprint(got["secrets"]) != "9" || fmt.Sprint(got["mounts"]) == "0" || fmt.Sprint(d["values_decrypted"]) == "0" {
		t.Fatalf("drill: %v", d)
	}
	if !strings.HasSuffix(keys[len(keys)-1], d["object"].(string)) {
		t.Errorf("drilled %v, latest is %s", d["object"], keys[len(keys)-1])
	}
	if s := checkStatus(t, s, "storage.restore-drill"); s != "pass" {
		t.Fatalf("compliance restore-drill after a passing drill: %s", s)
	}
	if s := checkStatus(t, s, "storage.snapshot-schedule"); s != "pass" {
		t.Fatalf("compliance snapshot-schedule: %s", s)
	}

	// The HIPAA report shows the drills, read from the drill records, and
	// the drill requests, counted in the audit trail (the period ends at
	// the report's time, exclusive).
	clk.Add(time.Second)
	rs := hipaaDrillSection(t, c)
	if rs.Result != reports.ResultPass {
		t.Fatalf("report section %s: %s (%s)", rs.ID, rs.Result, rs.ResultText)
	}
	fig := map[string]string{}
	for _, f := range rs.Figures {
		fig[f.Key] = f.Display()
	}
	if fig["drills"] != "2" || fig["drills_passed"] != "2" || fig["drill_requests"] != "2" || len(rs.Tables[1].Rows) != 2 {
		t.Fatalf("report section figures %v, drills %v", fig, rs.Tables[1].Rows)
	}

	// Corrupt the newest object in the bucket: the drill fails on its
	// integrity, and so does the compliance check.
	latest := keys[len(keys)-1]
	obj, err := s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(latest)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(obj.Body)
	_ = obj.Body.Close()
	body[len(body)/2] ^= 0xff
	if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(latest), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	sec2, err := c.Logical().Write("sys/storage/raft/snapshot-auto/drill/offsite", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sec2.Data["passed"] != false || !strings.Contains(sec2.Data["error"].(string), "integrity") {
		t.Fatalf("drill of a corrupted object: %v", sec2.Data)
	}
	if sec := hipaaDrillSection(t, c); sec.Result != reports.ResultFail || !strings.Contains(sec.ResultText, "integrity") {
		t.Fatalf("report section after a failed drill: %s (%s)", sec.Result, sec.ResultText)
	}
	if s := checkStatus(t, s, "storage.restore-drill"); s != "fail" {
		t.Fatalf("compliance restore-drill after a failed drill: %s", s)
	}

	// Snapshots older than twice the interval fail the schedule check.
	clk.Add(3 * time.Hour)
	if s := checkStatus(t, s, "storage.snapshot-schedule"); s != "fail" {
		t.Fatalf("compliance snapshot-schedule with stale snapshots: %s", s)
	}

	// The audit trail has the scheduled runs (made by the job) and the drills.
	raw, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	for _, want := range []string{"sys/storage/raft/snapshot-auto/run/offsite", "sys/storage/raft/snapshot-auto/drill/offsite", autosnapshot.JobName} {
		if !strings.Contains(log, want) {
			t.Errorf("audit trail lacks %q", want)
		}
	}
}
