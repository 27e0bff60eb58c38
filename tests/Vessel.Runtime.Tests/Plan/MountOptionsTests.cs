using Vessel.Runtime.Plan;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Plan;

public class MountOptionsTests
{
    [Fact]
    public void Flags_propagation_and_data_are_separated()
    {
        var o = MountOptions.Parse(["nosuid", "noexec", "rbind", "ro", "rslave", "mode=755", "size=65536k"], "mounts[0].options");
        Assert.Equal(MountOptions.MS_NOSUID | MountOptions.MS_NOEXEC | MountOptions.MS_RDONLY, o.Flags);
        Assert.Equal(MountOptions.MS_SLAVE | MountOptions.MS_REC, o.Propagation);
        Assert.True(o.Bind);
        Assert.True(o.Recursive);
        Assert.Equal("mode=755,size=65536k", o.Data);
    }

    [Fact]
    public void A_later_option_undoes_an_earlier_one() =>
        Assert.Equal(0UL, MountOptions.Parse(["ro", "rw"], "m").Flags & MountOptions.MS_RDONLY);

    [Fact]
    public void Unsupported_options_name_the_field()
    {
        var e = Assert.Throws<SpecException>(() => MountOptions.Parse(["idmap"], "mounts[3].options"));
        Assert.Equal("mounts[3].options", e.Field);
    }
}
