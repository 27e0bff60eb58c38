using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Cgroups;

[JsonSerializable(typeof(LinuxResources))]
internal sealed partial class ResourcesTestJsonContext : JsonSerializerContext;

public class LinuxResourcesJsonTests
{
    [Fact]
    public void Deserializes_TheRuntimeSpecExample()
    {
        // linux.resources as in the runtime-spec's config-linux.md examples.
        const string json = """
            {
              "devices": [ {"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"} ],
              "memory": { "limit": 536870912, "reservation": 536870912, "swap": 536870912, "kernel": -1, "kernelTCP": -1,
                          "swappiness": 0, "disableOOMKiller": false, "useHierarchy": true, "checkBeforeUpdate": true },
              "cpu": { "shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000, "realtimeRuntime": 950000,
                       "realtimePeriod": 1000000, "cpus": "2-3", "mems": "0-7", "idle": 0 },
              "pids": { "limit": 32771 },
              "blockIO": { "weight": 10, "leafWeight": 10,
                           "weightDevice": [ {"major": 8, "minor": 0, "weight": 500, "leafWeight": 300} ],
                           "throttleReadBpsDevice": [ {"major": 8, "minor": 0, "rate": 600} ],
                           "throttleWriteIOPSDevice": [ {"major": 8, "minor": 16, "rate": 300} ] },
              "hugepageLimits": [ {"pageSize": "2MB", "limit": 209715200} ],
              "network": { "classID": 1048577, "priorities": [ {"name": "eth0", "priority": 500} ] },
              "unified": { "memory.high": "max", "io.max": "8:0 rbps=1024" }
            }
            """;
        var r = JsonSerializer.Deserialize(json, ResourcesTestJsonContext.Default.LinuxResources)!;
        Assert.Equal(2, r.Devices!.Count);
        Assert.Null(r.Devices[0].Major);
        Assert.Equal(229L, r.Devices[1].Minor);
        Assert.Equal(536870912L, r.Memory!.Swap);
        Assert.Equal(-1L, r.Memory.KernelTCP);
        Assert.True(r.Memory.CheckBeforeUpdate);
        Assert.Equal(1024UL, r.Cpu!.Shares);
        Assert.Equal(950000L, r.Cpu.RealtimeRuntime);
        Assert.Equal("0-7", r.Cpu.Mems);
        Assert.Equal(32771L, r.Pids!.Limit);
        Assert.Equal((ushort)300, r.BlockIO!.WeightDevice![0].LeafWeight);
        Assert.Equal(300UL, r.BlockIO.ThrottleWriteIOPSDevice![0].Rate);
        Assert.Equal("2MB", r.HugepageLimits![0].PageSize);
        Assert.Equal(1048577U, r.Network!.ClassID);
        Assert.Equal("8:0 rbps=1024", r.Unified!["io.max"]);
    }
}
