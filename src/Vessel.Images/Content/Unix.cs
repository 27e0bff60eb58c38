namespace Vessel.Images.Content;

/// <summary>Unix-only file creation helpers (Vessel runs on Linux; the guard keeps the platform analyzer
/// satisfied without making every consumer of this library declare Linux-only).</summary>
internal static class Unix
{
    public static void CreateDirectory(string path, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException();
        Directory.CreateDirectory(path, mode);
    }

    public static FileStreamOptions CreateNew(UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException();
        return new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, UnixCreateMode = mode };
    }
}
