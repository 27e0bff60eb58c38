using System.Buffers.Binary;
using System.Text;

namespace Vessel.Runtime.Plan;

/// <summary>Serializes plan records: magic "VSLPLAN1", then u16 type, u16 0, u32 length, payload,
/// padded to 8 bytes. Integers little-endian, strings NUL-terminated after a record's integers.</summary>
public sealed class PlanWriter
{
    public static ReadOnlySpan<byte> Magic => "VSLPLAN1"u8;

    private readonly MemoryStream _out = new();
    private readonly MemoryStream _payload = new();

    public PlanWriter() => _out.Write(Magic);

    public PlanWriter Record(PlanRecord type) => Begin().End(type);

    public PlanWriter Begin()
    {
        _payload.SetLength(0);
        return this;
    }

    public PlanWriter U32(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _payload.Write(b);
        return this;
    }

    public PlanWriter I32(int value) => U32(unchecked((uint)value));

    public PlanWriter U64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        _payload.Write(b);
        return this;
    }

    public PlanWriter Str(string value)
    {
        if (value.Contains('\0')) throw new ArgumentException("a plan string cannot contain NUL", nameof(value));
        _payload.Write(Encoding.UTF8.GetBytes(value));
        _payload.WriteByte(0);
        return this;
    }

    public PlanWriter Bytes(ReadOnlySpan<byte> value)
    {
        _payload.Write(value);
        return this;
    }

    public PlanWriter End(PlanRecord type)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)_payload.Length);
        _out.Write(header);
        _payload.Position = 0;
        _payload.CopyTo(_out);
        var pad = (int)((8 - _payload.Length % 8) % 8);
        for (var i = 0; i < pad; i++) _out.WriteByte(0);
        return this;
    }

    public byte[] ToArray() => _out.ToArray();
}
