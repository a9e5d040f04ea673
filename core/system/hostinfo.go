package system

import (
	"context"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// hostInfoRoute is sys/host-info: the node's CPU, CPU times, disks, host and
// memory, as Vault reports them (gopsutil's structures). A part that
// cannot be read is left out and named in a warning.
func (b *Backend) hostInfoRoute() framework.Route {
	return framework.Route{Pattern: `host-info/?`, Operations: one(core.OpRead, b.hostInfo),
		Help: "Information about the host the node runs on."}
}

func (b *Backend) hostInfo(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	resp := &core.Response{Data: map[string]any{"timestamp": b.d.Now().UTC().Format(time.RFC3339Nano)}}
	warn := func(part string, err error) { resp.AddWarning("host-info: " + part + ": " + err.Error()) }
	if v, err := cpu.InfoWithContext(ctx); err != nil {
		warn("cpu", err)
	} else {
		resp.Data["cpu"] = v
	}
	if v, err := cpu.TimesWithContext(ctx, true); err != nil {
		warn("cpu_times", err)
	} else {
		resp.Data["cpu_times"] = v
	}
	if parts, err := disk.PartitionsWithContext(ctx, false); err != nil {
		warn("disk", err)
	} else {
		var usage []*disk.UsageStat
		for _, p := range parts {
			u, err := disk.UsageWithContext(ctx, p.Mountpoint)
			if err != nil {
				warn("disk "+p.Mountpoint, err)
				continue
			}
			usage = append(usage, u)
		}
		resp.Data["disk"] = usage
	}
	if v, err := host.InfoWithContext(ctx); err != nil {
		warn("host", err)
	} else {
		resp.Data["host"] = v
	}
	if v, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		warn("memory", err)
	} else {
		resp.Data["memory"] = v
	}
	return resp, nil
}
