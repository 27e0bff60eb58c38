namespace Vessel.Images.Snapshots;

/// <summary>overlayfs mount parameters for a stack of snapshots. Pure: the mount itself is the runtime's job.</summary>
public static class OverlayMount
{
    /// <summary>Kernel limit on lower layers (OVL_MAX_STACK).</summary>
    public const int MaxLowerDirs = 500;
    /// <summary>mount(2) copies at most one page of options.</summary>
    public const int MaxOptionsLength = 4095;

    /// <summary>The <c>-o</c> string for <c>mount -t overlay</c>. <paramref name="layerDirsBottomFirst"/> is in image
    /// order (as <see cref="SnapshotStore.Unpack"/> returns it); overlayfs wants the top layer first, so the
    /// lowerdir list is reversed. Without upper/work dirs the mount is read-only and needs two or more lower dirs.</summary>
    public static string BuildOptions(IReadOnlyList<string> layerDirsBottomFirst, string? upperDir, string? workDir)
    {
        Validate(layerDirsBottomFirst, upperDir, workDir, forOptionString: true);
        var parts = new List<string> { "lowerdir=" + string.Join(':', layerDirsBottomFirst.Reverse()) };
        if (upperDir is not null)
        {
            parts.Add("upperdir=" + upperDir);
            parts.Add("workdir=" + workDir);
        }
        string options = string.Join(',', parts);
        if (options.Length > MaxOptionsLength)
            throw new ArgumentException($"overlay options are {options.Length} bytes, more than the {MaxOptionsLength} mount(2) accepts; use BuildFsConfig (fsconfig lowerdir+) instead");
        return options;
    }

    /// <summary>The same as fsconfig(2) string parameters for the new mount API: one <c>lowerdir+</c> per layer
    /// (top first; kernel 6.8+), which has no page-size limit and needs no escaping.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> BuildFsConfig(IReadOnlyList<string> layerDirsBottomFirst, string? upperDir, string? workDir)
    {
        Validate(layerDirsBottomFirst, upperDir, workDir, forOptionString: false);
        var result = layerDirsBottomFirst.Reverse().Select(d => new KeyValuePair<string, string>("lowerdir+", d)).ToList();
        if (upperDir is not null)
        {
            result.Add(new("upperdir", upperDir));
            result.Add(new("workdir", workDir!));
        }
        return result;
    }

    private static void Validate(IReadOnlyList<string> lowers, string? upper, string? work, bool forOptionString)
    {
        if ((upper is null) != (work is null))
            throw new ArgumentException("overlay needs both an upper and a work dir, or neither (read-only)");
        if (lowers.Count == 0) throw new ArgumentException("overlay needs at least one lower dir");
        if (upper is null && lowers.Count < 2)
            throw new ArgumentException("a read-only overlay (no upper dir) needs at least two lower dirs");
        if (lowers.Count > MaxLowerDirs)
            throw new ArgumentException($"{lowers.Count} lower dirs, more than the kernel's limit of {MaxLowerDirs}");
        foreach (string d in lowers) CheckPath(d, "lower", forOptionString);
        if (upper is not null)
        {
            CheckPath(upper, "upper", forOptionString);
            CheckPath(work!, "work", forOptionString);
        }
    }

    private static void CheckPath(string path, string what, bool forOptionString)
    {
        if (path.Length == 0 || path[0] != '/') throw new ArgumentException($"overlay {what} dir \"{path}\" is not an absolute path");
        if (path.Contains('\0') || path.Contains('\n')) throw new ArgumentException($"overlay {what} dir \"{path}\" contains a NUL or newline");
        // ',' separates mount options and ':' lower dirs; '\' escapes: a path containing them would change
        // the meaning of the option string (option injection), so refuse rather than escape.
        if (forOptionString && path.IndexOfAny([',', ':', '\\']) >= 0)
            throw new ArgumentException($"overlay {what} dir \"{path}\" contains ',', ':' or '\\', which the mount option string cannot carry");
    }
}
