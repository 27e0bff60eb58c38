namespace Vessel.Runtime.Plan;

/// <summary>Namespace types of the runtime-spec and their CLONE_NEW* flags and /proc/PID/ns names.</summary>
public static class Namespaces
{
    public const ulong NewNs = 0x00020000, NewCgroup = 0x02000000, NewUts = 0x04000000, NewIpc = 0x08000000,
        NewUser = 0x10000000, NewPid = 0x20000000, NewNet = 0x40000000, NewTime = 0x00000080;

    public static readonly (string Type, ulong Flag, string ProcName)[] All =
    [
        ("user", NewUser, "user"), ("pid", NewPid, "pid"), ("network", NewNet, "net"), ("ipc", NewIpc, "ipc"),
        ("uts", NewUts, "uts"), ("mount", NewNs, "mnt"), ("cgroup", NewCgroup, "cgroup"), ("time", NewTime, "time"),
    ];

    public static ulong? Flag(string type)
    {
        foreach (var ns in All) if (ns.Type == type) return ns.Flag;
        return null;
    }
}
