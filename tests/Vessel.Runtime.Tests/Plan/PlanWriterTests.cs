using System.Buffers.Binary;
using System.Text;
using Vessel.Runtime.Plan;

namespace Vessel.Runtime.Tests.Plan;

public class PlanWriterTests
{
    [Fact]
    public void Records_are_header_payload_and_padding_to_eight_bytes()
    {
        var bytes = new PlanWriter()
            .Begin().U32(7).Str("ab").End(PlanRecord.Hostname)
            .Record(PlanRecord.Setsid)
            .ToArray();

        Assert.Equal("VSLPLAN1", Encoding.ASCII.GetString(bytes, 0, 8));
        Assert.Equal((ushort)PlanRecord.Hostname, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12))); // payload length: u32 + "ab\0"
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(16)));
        Assert.Equal("ab\0"u8.ToArray(), bytes[20..23]);
        Assert.Equal(0, bytes[23]); // padding
        Assert.Equal((ushort)PlanRecord.Setsid, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(24)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(28)));
        Assert.Equal(32, bytes.Length);
    }

    [Fact]
    public void Strings_with_NUL_are_refused() =>
        Assert.Throws<ArgumentException>(() => new PlanWriter().Begin().Str("a\0b"));

    [Fact]
    public void Record_numbers_match_the_C_header()
    {
        var header = File.ReadAllText(Path.Combine(RepoRoot(), "src/executor/plan.h"));
        foreach (var record in Enum.GetValues<PlanRecord>())
        {
            var cName = "R_" + string.Concat(record.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();
            cName = cName switch
            {
                "R_JOIN_NAMESPACE" => "R_JOIN_NS", "R_ROOTFS_READONLY" => "R_ROOTFS_READONLY", "R_CAPABILITIES" => "R_CAPS",
                "R_NO_NEW_PRIVILEGES" => "R_NO_NEW_PRIVS", "R_READONLY_PATH" => "R_READONLY_PATH", _ => cName,
            };
            Assert.Matches($@"\b{cName} = {(int)record},", header);
        }
    }

    internal static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Vessel.slnx"))) dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("repo root not found");
        return dir;
    }
}
