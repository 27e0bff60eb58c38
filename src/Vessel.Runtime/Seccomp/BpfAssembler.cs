using System.Buffers.Binary;

namespace Vessel.Runtime.Seccomp;

/// <summary>Classic BPF opcodes used by the seccomp compiler (linux/filter.h, linux/bpf_common.h).</summary>
internal static class Bpf
{
    public const ushort LdWAbs = 0x20;  // BPF_LD | BPF_W | BPF_ABS
    public const ushort AndK = 0x54;    // BPF_ALU | BPF_AND | BPF_K
    public const ushort Ja = 0x05;      // BPF_JMP | BPF_JA
    public const ushort JeqK = 0x15;    // BPF_JMP | BPF_JEQ | BPF_K
    public const ushort JgtK = 0x25;    // BPF_JMP | BPF_JGT | BPF_K
    public const ushort JgeK = 0x35;    // BPF_JMP | BPF_JGE | BPF_K
    public const ushort JsetK = 0x45;   // BPF_JMP | BPF_JSET | BPF_K
    public const ushort RetK = 0x06;    // BPF_RET | BPF_K
    public const int InstructionSize = 8; // struct sock_filter
}

/// <summary>A jump target inside a <see cref="BpfAssembler"/> program; placed once, after every jump to it
/// (classic BPF only jumps forward).</summary>
internal sealed class BpfLabel
{
    internal int Item = -1;
}

/// <summary>Builds a classic BPF program with symbolic forward jumps. Conditional jumps have 8-bit
/// offsets: when a target is more than 255 instructions away the jump is rewritten to go through an
/// unconditional JA (32-bit offset) placed right after it:
/// <c>jcc k, far, near</c> becomes <c>jcc k, 0, near+1; ja far</c> (and both far: <c>jcc k, 0, 1; ja t; ja f</c>).
/// Expansions only lengthen distances, so the layout is iterated until no further jump needs one.</summary>
internal sealed class BpfAssembler
{
    private enum Kind : byte { Stmt, Jump, Ja, Label }

    private readonly record struct Item(Kind Kind, ushort Code, uint K, BpfLabel? True, BpfLabel? False);

    private readonly List<Item> _items = [];

    public BpfLabel NewLabel() => new();

    public void Mark(BpfLabel label)
    {
        if (label.Item >= 0)
            throw new InvalidOperationException("BPF label placed twice");
        label.Item = _items.Count;
        _items.Add(new Item(Kind.Label, 0, 0, null, null));
    }

    public void LoadAbs(uint offset) => _items.Add(new Item(Kind.Stmt, Bpf.LdWAbs, offset, null, null));
    public void And(uint k) => _items.Add(new Item(Kind.Stmt, Bpf.AndK, k, null, null));
    public void Ret(uint k) => _items.Add(new Item(Kind.Stmt, Bpf.RetK, k, null, null));
    public void Goto(BpfLabel target) => _items.Add(new Item(Kind.Ja, Bpf.Ja, 0, target, null));

    /// <summary>Conditional jump (<see cref="Bpf.JeqK"/>, JgtK, JgeK, JsetK) on A against <paramref name="k"/>.</summary>
    public void Jump(ushort code, uint k, BpfLabel whenTrue, BpfLabel whenFalse)
    {
        if (ReferenceEquals(whenTrue, whenFalse))
            Goto(whenTrue);
        else
            _items.Add(new Item(Kind.Jump, code, k, whenTrue, whenFalse));
    }

    /// <summary>Conditional jump whose false branch falls through to the next instruction.</summary>
    public void JumpIf(ushort code, uint k, BpfLabel whenTrue)
    {
        var next = NewLabel();
        Jump(code, k, whenTrue, next);
        Mark(next);
    }

    /// <summary>Conditional jump whose true branch falls through to the next instruction.</summary>
    public void JumpUnless(ushort code, uint k, BpfLabel whenFalse)
    {
        var next = NewLabel();
        Jump(code, k, next, whenFalse);
        Mark(next);
    }

    /// <summary>The <c>struct sock_filter[]</c> bytes (little-endian, as on x86).</summary>
    public byte[] Assemble()
    {
        int n = _items.Count;
        var farTrue = new bool[n];
        var farFalse = new bool[n];
        var pos = new int[n + 1];
        while (true)
        {
            int p = 0;
            for (int i = 0; i < n; i++)
            {
                pos[i] = p;
                p += Size(i, farTrue, farFalse);
            }
            pos[n] = p;

            bool changed = false;
            for (int i = 0; i < n; i++)
            {
                var item = _items[i];
                if (item.Kind != Kind.Jump)
                    continue;
                if (!farTrue[i] && Target(item.True!, pos) - pos[i] - 1 > byte.MaxValue)
                    farTrue[i] = changed = true;
                if (!farFalse[i] && Target(item.False!, pos) - pos[i] - 1 > byte.MaxValue)
                    farFalse[i] = changed = true;
            }
            if (!changed)
                break;
        }

        var bytes = new byte[pos[n] * Bpf.InstructionSize];
        for (int i = 0; i < n; i++)
        {
            var item = _items[i];
            int p = pos[i];
            switch (item.Kind)
            {
                case Kind.Stmt:
                    Write(bytes, p, item.Code, 0, 0, item.K);
                    break;
                case Kind.Ja:
                    Write(bytes, p, Bpf.Ja, 0, 0, (uint)Offset(p, Target(item.True!, pos)));
                    break;
                case Kind.Jump:
                    int t = Target(item.True!, pos), f = Target(item.False!, pos);
                    if (!farTrue[i] && !farFalse[i])
                        Write(bytes, p, item.Code, Offset8(p, t), Offset8(p, f), item.K);
                    else if (farTrue[i] && !farFalse[i])
                    {
                        Write(bytes, p, item.Code, 0, Offset8(p, f), item.K);
                        Write(bytes, p + 1, Bpf.Ja, 0, 0, (uint)Offset(p + 1, t));
                    }
                    else if (!farTrue[i] && farFalse[i])
                    {
                        Write(bytes, p, item.Code, Offset8(p, t), 0, item.K);
                        Write(bytes, p + 1, Bpf.Ja, 0, 0, (uint)Offset(p + 1, f));
                    }
                    else
                    {
                        Write(bytes, p, item.Code, 0, 1, item.K);
                        Write(bytes, p + 1, Bpf.Ja, 0, 0, (uint)Offset(p + 1, t));
                        Write(bytes, p + 2, Bpf.Ja, 0, 0, (uint)Offset(p + 2, f));
                    }
                    break;
            }
        }
        return bytes;
    }

    private int Size(int i, bool[] farTrue, bool[] farFalse) => _items[i].Kind switch
    {
        Kind.Label => 0,
        Kind.Jump => 1 + (farTrue[i] ? 1 : 0) + (farFalse[i] ? 1 : 0),
        _ => 1,
    };

    private static int Target(BpfLabel label, int[] pos) =>
        label.Item >= 0 ? pos[label.Item] : throw new InvalidOperationException("BPF jump to a label never placed");

    private static int Offset(int from, int to)
    {
        int off = to - from - 1;
        if (off < 0)
            throw new InvalidOperationException("BPF jump backwards");
        return off;
    }

    private static byte Offset8(int from, int to)
    {
        int off = Offset(from, to);
        return off <= byte.MaxValue ? (byte)off : throw new InvalidOperationException("BPF jump out of 8-bit range");
    }

    private static void Write(byte[] bytes, int index, ushort code, byte jt, byte jf, uint k)
    {
        var span = bytes.AsSpan(index * Bpf.InstructionSize, Bpf.InstructionSize);
        BinaryPrimitives.WriteUInt16LittleEndian(span, code);
        span[2] = jt;
        span[3] = jf;
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], k);
    }
}
