using Vessel.Images.Interop;

namespace Vessel.Images.Content;

/// <summary>Crash-safe file replacement: write a temp file in the same directory, fsync it, rename it over
/// the target, fsync the directory. A reader sees the old content or the new, never a torn file.</summary>
public static class AtomicFile
{
    /// <param name="durable">false: no fsyncs. Still atomic for readers and across a crash of the process; only a
    /// power loss or kernel crash can lose the write (callers that can rebuild the file after one choose this).</param>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        bool durable = true)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".tmp-{Path.GetFileName(path)}-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(tmp, Unix.CreateNew(mode)))
            {
                fs.Write(content);
                fs.Flush(flushToDisk: durable);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        if (durable) FsyncDirectory(dir);
    }

    /// <summary>Moves a finished, already fsynced temp file into place and fsyncs the directory.</summary>
    public static void Commit(string tempPath, string finalPath)
    {
        File.Move(tempPath, finalPath, overwrite: true);
        FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(finalPath))!);
    }

    public static void FsyncDirectory(string dir)
    {
        int fd = Libc.openat(Libc.AT_FDCWD, dir, Libc.O_RDONLY | Libc.O_DIRECTORY);
        if (fd < 0) return; // best effort: the rename itself already happened
        try { Libc.fsync(fd); }
        finally { Libc.close(fd); }
    }

    internal static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
