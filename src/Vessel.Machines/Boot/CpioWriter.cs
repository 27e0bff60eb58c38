using System.Text;

namespace Vessel.Machines.Boot;

/// <summary>Writes a cpio archive in the "newc" format (SVR4 without CRC, magic 070701), the one the kernel
/// unpacks as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a header of
/// 13 eight-digit hex fields, the NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes; the
/// archive ends with the entry TRAILER!!!.</summary>
public sealed class CpioWriter(Stream output) : IDisposable
{
    public const int S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFLNK = 0xA000, S_IFCHR = 0x2000;
    private uint _ino = 1;
    private long _written;
    private bool _finished;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public void Directory(string name, int mode = 0x1ed) => Entry(name, S_IFDIR | (mode & 0xfff), [], 2);

    public void File(string name, ReadOnlySpan<byte> data, int mode = 0x1a4) => Entry(name, S_IFREG | (mode & 0xfff), data, 1);

    public void Symlink(string name, string target) => Entry(name, S_IFLNK | 0x1ff, Encoding.UTF8.GetBytes(target), 1);

    public void CharDevice(string name, int major, int minor, int mode = 0x180) => Entry(name, S_IFCHR | (mode & 0xfff), [], 1, major, minor);

    private void Entry(string name, int mode, ReadOnlySpan<byte> data, int nlink, int rmajor = 0, int rminor = 0)
    {
        if (_finished) throw new InvalidOperationException("the archive is finished");
        name = name.TrimStart('/');
        if (name.Length == 0 || name.Split('/').Any(p => p is "" or ".." )) throw new ArgumentException($"bad cpio entry name \"{name}\"", nameof(name));
        if (!_names.Add(name)) throw new ArgumentException($"duplicate cpio entry \"{name}\"", nameof(name));
        WriteHeader(name, _ino++, mode, nlink, data.Length, rmajor, rminor);
        Write(data);
        Pad();
    }

    private void WriteHeader(string name, uint ino, int mode, int nlink, int size, int rmajor, int rminor)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var sb = new StringBuilder("070701", 110);
        foreach (long field in new long[] { ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, nameBytes.Length + 1, 0 })
            sb.Append(((uint)field).ToString("x8"));
        Write(Encoding.ASCII.GetBytes(sb.ToString()));
        Write(nameBytes);
        Write([0]);
        Pad();
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        output.Write(bytes);
        _written += bytes.Length;
    }

    private void Pad()
    {
        int pad = (int)((4 - _written % 4) % 4);
        if (pad > 0) Write(new byte[pad]);
    }

    /// <summary>Writes the trailer (and pads the archive to 512 bytes, as cpio(1) does).</summary>
    public void Finish()
    {
        if (_finished) return;
        WriteHeader("TRAILER!!!", 0, 0, 1, 0, 0, 0);
        int pad = (int)((512 - _written % 512) % 512);
        if (pad > 0) Write(new byte[pad]);
        _finished = true;
    }

    public void Dispose() => Finish();
}
