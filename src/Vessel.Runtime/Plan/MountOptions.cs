namespace Vessel.Runtime.Plan;

/// <summary>Mount options of config.json split the way mount(8) and runc do: flags, propagation,
/// and the rest joined as the file system's data string.</summary>
/// <param name="CopyUp">runc's `tmpcopyup` extension: a tmpfs starts with a copy of the directory it covers (podman asks for it
/// on /tmp, /run and /var/tmp of a --read-only container).</param>
public sealed record MountOptions(ulong Flags, ulong ClearFlags, ulong Propagation, string Data, bool Bind, bool Recursive, bool CopyUp = false)
{
    public const ulong MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_SYNCHRONOUS = 16, MS_REMOUNT = 32,
        MS_MANDLOCK = 64, MS_DIRSYNC = 128, MS_NOSYMFOLLOW = 256, MS_NOATIME = 1024, MS_NODIRATIME = 2048, MS_BIND = 4096,
        MS_MOVE = 8192, MS_REC = 16384, MS_SILENT = 32768, MS_UNBINDABLE = 1 << 17, MS_PRIVATE = 1 << 18,
        MS_SLAVE = 1 << 19, MS_SHARED = 1 << 20, MS_RELATIME = 1 << 21, MS_I_VERSION = 1 << 23,
        MS_STRICTATIME = 1 << 24, MS_LAZYTIME = 1 << 25;

    private static readonly Dictionary<string, (bool Clear, ulong Flag)> FlagOptions = new()
    {
        ["async"] = (true, MS_SYNCHRONOUS), ["atime"] = (true, MS_NOATIME), ["defaults"] = (false, 0),
        ["dev"] = (true, MS_NODEV), ["diratime"] = (true, MS_NODIRATIME), ["dirsync"] = (false, MS_DIRSYNC),
        ["exec"] = (true, MS_NOEXEC), ["iversion"] = (false, MS_I_VERSION), ["lazytime"] = (false, MS_LAZYTIME),
        ["loud"] = (true, MS_SILENT), ["mand"] = (false, MS_MANDLOCK), ["noatime"] = (false, MS_NOATIME),
        ["nodev"] = (false, MS_NODEV), ["nodiratime"] = (false, MS_NODIRATIME), ["noexec"] = (false, MS_NOEXEC),
        ["noiversion"] = (true, MS_I_VERSION), ["nolazytime"] = (true, MS_LAZYTIME), ["nomand"] = (true, MS_MANDLOCK),
        ["norelatime"] = (true, MS_RELATIME), ["nostrictatime"] = (true, MS_STRICTATIME), ["nosuid"] = (false, MS_NOSUID),
        ["nosymfollow"] = (false, MS_NOSYMFOLLOW), ["relatime"] = (false, MS_RELATIME), ["remount"] = (false, MS_REMOUNT),
        ["ro"] = (false, MS_RDONLY), ["rw"] = (true, MS_RDONLY), ["silent"] = (false, MS_SILENT),
        ["strictatime"] = (false, MS_STRICTATIME), ["suid"] = (true, MS_NOSUID), ["sync"] = (false, MS_SYNCHRONOUS),
    };

    private static readonly Dictionary<string, ulong> PropagationOptions = new()
    {
        ["private"] = MS_PRIVATE, ["rprivate"] = MS_PRIVATE | MS_REC, ["shared"] = MS_SHARED,
        ["rshared"] = MS_SHARED | MS_REC, ["slave"] = MS_SLAVE, ["rslave"] = MS_SLAVE | MS_REC,
        ["unbindable"] = MS_UNBINDABLE, ["runbindable"] = MS_UNBINDABLE | MS_REC,
    };

    /// <summary>Parses a mount's options. <paramref name="field"/> names it in errors.</summary>
    public static MountOptions Parse(IEnumerable<string>? options, string field)
    {
        ulong flags = 0, clear = 0, propagation = 0;
        bool bind = false, recursive = false, copyUp = false;
        var data = new List<string>();
        foreach (var option in options ?? [])
        {
            if (option is "bind" or "rbind")
            {
                bind = true;
                recursive |= option == "rbind";
            }
            else if (FlagOptions.TryGetValue(option, out var f))
            {
                if (f.Clear) { flags &= ~f.Flag; clear |= f.Flag; }
                else { flags |= f.Flag; clear &= ~f.Flag; }
            }
            else if (PropagationOptions.TryGetValue(option, out var p)) propagation = p;
            else if (option == "tmpcopyup") copyUp = true;
            else if (option is "idmap" or "ridmap")
                throw new Spec.SpecException(field, $"mount option \"{option}\" (id-mapped mounts) is not supported");
            else if (option is "rro" or "rrw" or "rnosuid" or "rnodev" or "rnoexec" or "rnoatime" or "rrelatime" or "rstrictatime" or "rnodiratime" or "rnosymfollow")
                throw new Spec.SpecException(field, $"recursive mount option \"{option}\" is not supported");
            else if (option.Length == 0)
                throw new Spec.SpecException(field, "empty mount option");
            else data.Add(option);
        }
        return new MountOptions(flags, clear, propagation, string.Join(',', data), bind, recursive, copyUp);
    }
}
