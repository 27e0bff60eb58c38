using System.Buffers.Binary;

namespace Vessel.Runtime.Tests.Seccomp;

/// <summary>A minimal classic-BPF interpreter for seccomp filters, plus the structural checks the
/// kernel makes before accepting one (opcode whitelist, in-range jumps, aligned loads within
/// struct seccomp_data, a RET at the end).</summary>
internal static class BpfInterpreter
{
    public const uint AuditArchX86_64 = 0xc000003e;
    public const uint AuditArchI386 = 0x40000003;
    public const uint AuditArchAarch64 = 0xc00000b7;

    private const int SeccompDataSize = 64;

    /// <summary>Runs <paramref name="filter"/> on a seccomp_data and returns the SECCOMP_RET_* value.</summary>
    public static uint Run(byte[] filter, uint arch, uint nr, ReadOnlySpan<ulong> args = default, ulong instructionPointer = 0)
    {
        Span<byte> data = stackalloc byte[SeccompDataSize];
        BinaryPrimitives.WriteUInt32LittleEndian(data, nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data[4..], arch);
        BinaryPrimitives.WriteUInt64LittleEndian(data[8..], instructionPointer);
        for (int i = 0; i < args.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(data[(16 + 8 * i)..], args[i]);

        int count = filter.Length / 8;
        uint a = 0;
        int pc = 0;
        for (int steps = 0; steps <= count; steps++)
        {
            if (pc < 0 || pc >= count)
                throw new InvalidOperationException($"pc {pc} out of the program (length {count})");
            var (code, jt, jf, k) = Decode(filter, pc);
            switch (code)
            {
                case 0x20: // ld [k]
                    if (k % 4 != 0 || k + 4 > SeccompDataSize)
                        throw new InvalidOperationException($"bad load offset {k} at {pc}");
                    a = BinaryPrimitives.ReadUInt32LittleEndian(data[(int)k..]);
                    pc++;
                    break;
                case 0x54: // and #k
                    a &= k;
                    pc++;
                    break;
                case 0x05: // ja
                    pc += 1 + (int)k;
                    break;
                case 0x15: pc += 1 + (a == k ? jt : jf); break;
                case 0x25: pc += 1 + (a > k ? jt : jf); break;
                case 0x35: pc += 1 + (a >= k ? jt : jf); break;
                case 0x45: pc += 1 + ((a & k) != 0 ? jt : jf); break;
                case 0x06: return k; // ret #k
                case 0x16: return a; // ret a
                default:
                    throw new InvalidOperationException($"unsupported opcode 0x{code:x} at {pc}");
            }
        }
        throw new InvalidOperationException("program did not terminate");
    }

    /// <summary>The checks of the kernel's bpf_check_classic + seccomp_check_filter that matter here.</summary>
    public static void Validate(byte[] filter)
    {
        Assert.Equal(0, filter.Length % 8);
        int count = filter.Length / 8;
        Assert.InRange(count, 1, 4096);
        for (int pc = 0; pc < count; pc++)
        {
            var (code, jt, jf, k) = Decode(filter, pc);
            switch (code)
            {
                case 0x20:
                    Assert.True(k % 4 == 0 && k + 4 <= SeccompDataSize, $"bad load offset {k} at {pc}");
                    break;
                case 0x54:
                case 0x06:
                case 0x16:
                    break;
                case 0x05:
                    Assert.True((long)pc + 1 + k < count, $"ja out of range at {pc}");
                    break;
                case 0x15:
                case 0x25:
                case 0x35:
                case 0x45:
                    Assert.True(pc + 1 + jt < count && pc + 1 + jf < count, $"conditional jump out of range at {pc}");
                    break;
                default:
                    Assert.Fail($"opcode 0x{code:x} at {pc} is not allowed in a seccomp filter");
                    break;
            }
        }
        var (lastCode, _, _, _) = Decode(filter, count - 1);
        Assert.True(lastCode is 0x06 or 0x16, "a filter must end with RET");
    }

    public static (ushort Code, byte Jt, byte Jf, uint K) Decode(byte[] filter, int pc)
    {
        var span = filter.AsSpan(pc * 8, 8);
        return (BinaryPrimitives.ReadUInt16LittleEndian(span), span[2], span[3], BinaryPrimitives.ReadUInt32LittleEndian(span[4..]));
    }
}
