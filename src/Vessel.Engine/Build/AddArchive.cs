using System.ComponentModel;
using System.Diagnostics;
using System.IO.Compression;

namespace Vessel.Engine.Build;

/// <summary>ADD's local archives, as Docker decides them: a file whose contents — plain, or compressed with gzip,
/// bzip2, xz or zstd — start with a valid tar header is extracted; anything else (a gzipped text file too) is
/// copied as it is. bzip2 and xz go through the host's <c>bzip2</c>/<c>xz</c>, as dockerd runs <c>xz</c>.</summary>
internal static class AddArchive
{
    private enum Kind { Plain, Gzip, Zstd, Bzip2, Xz }

    /// <summary>Whether ADD extracts <paramref name="path"/>.</summary>
    public static bool IsArchive(string path, string name)
    {
        Kind kind = Sniff(path);
        byte[] head = new byte[512];
        int n;
        try
        {
            using var s = Open(path, kind, name, out Process? tool);
            try { n = s.ReadAtLeast(head, head.Length, throwOnEndOfStream: false); }
            finally { Stop(tool); }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ZstdSharp.ZstdException) { return false; }
        return n == head.Length && IsTarHeader(head);
    }

    /// <summary>The decompressed tar stream; <paramref name="done"/> checks, after the stream was read to its end, that
    /// the decompressing tool (if any) succeeded.</summary>
    public static Stream OpenTar(string path, string name, out Action done)
    {
        Stream s = Open(path, Sniff(path), name, out Process? tool);
        string exe = tool is null ? "" : Path.GetFileName(tool.StartInfo.FileName);
        done = () =>
        {
            if (tool is null) return;
            tool.WaitForExit();
            string err = tool.StandardError.ReadToEnd().Trim();
            int code = tool.ExitCode;
            tool.Dispose();
            if (code != 0) throw new BuildException($"ADD {name}: {exe} failed (exit code {code}){(err.Length > 0 ? ": " + err : "")}");
        };
        return s;
    }

    /// <summary>The names of the archive's entries (a second pass, for --chown), whiteouts left out; "" is the
    /// destination directory itself (an entry "./").</summary>
    public static List<string> EntryNames(string path, string name)
    {
        var names = new List<string>();
        Action done;
        using (var s = OpenTar(path, name, out done))
        using (var tar = new System.Formats.Tar.TarReader(s))
        {
            while (tar.GetNextEntry() is { } e)
            {
                string n = e.Name.TrimEnd('/');
                if (n.StartsWith("./", StringComparison.Ordinal)) n = n[2..];
                if (n == ".") n = ""; // the destination itself
                if (n.Split('/')[^1].StartsWith(".wh.", StringComparison.Ordinal)) continue;
                names.Add(n);
            }
            // The rest of the stream (padding), so the tool ends cleanly.
            s.CopyTo(Stream.Null);
        }
        done();
        return names;
    }

    private static Kind Sniff(string path)
    {
        Span<byte> h = stackalloc byte[6];
        int n;
        using (var f = File.OpenRead(path)) n = f.ReadAtLeast(h, h.Length, throwOnEndOfStream: false);
        h = h[..n];
        if (h.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b])) return Kind.Gzip;
        if (h.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd])) return Kind.Zstd;
        if (h.StartsWith("BZh"u8)) return Kind.Bzip2;
        if (h.StartsWith((ReadOnlySpan<byte>)[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return Kind.Xz;
        return Kind.Plain;
    }

    private static Stream Open(string path, Kind kind, string name, out Process? tool)
    {
        tool = null;
        if (kind is Kind.Bzip2 or Kind.Xz)
        {
            string exe = kind == Kind.Xz ? "xz" : "bzip2";
            var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in new[] { "-d", "-c", "--", path }) psi.ArgumentList.Add(a);
            try { tool = Process.Start(psi)!; }
            catch (Win32Exception) { throw new BuildException($"ADD {name}: the file is {exe}-compressed and {exe} is not installed on the host"); }
            return tool.StandardOutput.BaseStream;
        }
        var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return kind switch
        {
            Kind.Gzip => new GZipStream(f, CompressionMode.Decompress),
            Kind.Zstd => new ZstdSharp.DecompressionStream(f),
            _ => f,
        };
    }

    private static void Stop(Process? tool)
    {
        if (tool is null) return;
        try { tool.Kill(); } catch (InvalidOperationException) { }
        tool.WaitForExit();
        tool.Dispose();
    }

    /// <summary>A tar header block: its checksum (octal, the sum of its bytes with the checksum field counted as
    /// blanks) matches, as Go's archive/tar requires; old v7 archives have no "ustar" magic.</summary>
    internal static bool IsTarHeader(ReadOnlySpan<byte> h)
    {
        if (h.Length < 512) return false;
        ReadOnlySpan<byte> field = h.Slice(148, 8);
        long want = 0;
        int digits = 0;
        foreach (byte b in field)
        {
            if (b is (byte)' ' or 0) { if (digits > 0) break; continue; }
            if (b is < (byte)'0' or > (byte)'7') return false;
            want = want * 8 + (b - '0');
            digits++;
        }
        if (digits == 0) return false;
        long sum = 0;
        for (int i = 0; i < 512; i++) sum += i is >= 148 and < 156 ? ' ' : h[i];
        return sum == want;
    }
}
