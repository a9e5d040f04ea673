package autosnapshot

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// configRoute is sys/storage/raft/snapshot-auto/config/:name (sudo):
// create or replace (POST), read (GET, without the secret access key and
// session token) and delete a schedule. Deleting a schedule keeps its
// stored snapshots and its drill history.
func (r routes) configRoute() framework.Route {
	f := map[string]*framework.FieldSchema{
		"name":                          nameField["name"],
		"interval":                      {Type: framework.TypeDurationSecond, Description: "Time between snapshots (seconds or a Go duration)."},
		"retain":                        {Type: framework.TypeInt, Default: 1, Description: "How many snapshots to keep."},
		"storage_type":                  {Type: framework.TypeString, Description: "local or aws-s3."},
		"path_prefix":                   {Type: framework.TypeString, Description: "Folder (local) or key prefix in the bucket (aws-s3)."},
		"file_prefix":                   {Type: framework.TypeString, Default: DefaultFilePrefix, Description: "Prefix of the snapshot names."},
		"local_max_space":               {Type: framework.TypeInt64, Description: "Byte limit of a local schedule's snapshots (0: none)."},
		"aws_s3_bucket":                 {Type: framework.TypeString},
		"aws_s3_region":                 {Type: framework.TypeString},
		"aws_s3_endpoint":               {Type: framework.TypeString},
		"aws_s3_force_path_style":       {Type: framework.TypeBool},
		"aws_s3_disable_tls":            {Type: framework.TypeBool},
		"aws_s3_server_side_encryption": {Type: framework.TypeBool},
		"aws_s3_kms_key":                {Type: framework.TypeString},
		"aws_access_key_id":             {Type: framework.TypeString},
		"aws_secret_access_key":         {Type: framework.TypeString},
		"aws_session_token":             {Type: framework.TypeString},
		"drill_interval":                {Type: framework.TypeDurationSecond, Description: "Time between scheduled restore drills (0: on request only)."},
	}
	return framework.Route{Pattern: `storage/raft/snapshot-auto/config/` + namePattern, Fields: f, Sudo: true,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: r.writeConfig, core.OpCreate: r.writeConfig, core.OpRead: r.readConfig, core.OpDelete: r.deleteConfig},
		ExistenceCheck: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
			c, err := r.s.config(ctx, d.String("name"))
			return c != nil, err
		},
		Help: "An automated snapshot schedule: interval, retention and where snapshots go."}
}

func (r routes) writeConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c := &Config{
		Name: d.String("name"), Interval: d.Duration("interval"), Retain: d.Int("retain"),
		StorageType: d.String("storage_type"), PathPrefix: d.String("path_prefix"), FilePrefix: d.String("file_prefix"),
		LocalMaxSpace: d.Int64("local_max_space"),
		S3Bucket:      d.String("aws_s3_bucket"), S3Region: d.String("aws_s3_region"), S3Endpoint: d.String("aws_s3_endpoint"),
		S3ForcePathStyle: d.Bool("aws_s3_force_path_style"), S3DisableTLS: d.Bool("aws_s3_disable_tls"),
		S3SSE: d.Bool("aws_s3_server_side_encryption"), S3KMSKey: d.String("aws_s3_kms_key"),
		AccessKeyID: d.String("aws_access_key_id"), SecretAccessKey: d.String("aws_secret_access_key"),
		SessionToken: d.String("aws_session_token"), DrillInterval: d.Duration("drill_interval"),
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	st, err := r.s.status(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	if st.Name == "" {
		st.Configured = r.s.now().UTC()
	}
	st.Name, st.StorageType, st.IntervalSecs, st.Retain = c.Name, c.StorageType, int64(c.Interval/time.Second), c.Retain
	st.DrillSecs = int64(c.DrillInterval / time.Second)
	b := r.s.host.Storage()
	if err := storage.PutJSON(ctx, b, configKey(c.Name), c); err != nil {
		return nil, err
	}
	if err := r.s.putStatus(ctx, st); err != nil {
		return nil, err
	}
	return nil, nil
}

func (r routes) readConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := r.s.config(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: c.public()}, nil
}

func (r routes) deleteConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("name")
	b := r.s.host.Storage()
	if err := b.Delete(ctx, configKey(name)); err != nil {
		return nil, err
	}
	if err := b.Delete(ctx, statusKey(name)); err != nil {
		return nil, err
	}
	return nil, nil
}

func (r routes) listConfigs(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	names, err := r.s.names(ctx)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": names}}, nil
}
