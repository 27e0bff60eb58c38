namespace Vessel.Runtime.Plan;

/// <summary>Record types of the executor's plan. Must match src/executor/plan.h number for number;
/// docs/executor.md is the contract.</summary>
public enum PlanRecord : ushort
{
    Mode = 1, CloneFlags = 2, UnshareCgroup = 3, JoinNamespace = 4,
    Rootfs = 10, RootfsPropagation = 11, RootfsReadonly = 12, NoPivot = 13, Mount = 14, Device = 15,
    Symlink = 16, Mask = 17, ReadonlyPath = 18, Hostname = 19, Domainname = 20, Sysctl = 21,
    Rlimit = 30, OomScoreAdj = 31, Capabilities = 32, NoNewPrivileges = 33, Seccomp = 34, User = 35,
    Cwd = 36, Env = 37, Arg = 38, PreserveFds = 39, ConsoleFd = 40, FifoFd = 41, Hook = 42, SyncHooks = 43,
    ParentDeathSignal = 44, Personality = 45, Setsid = 46,
}

public enum PlanMode : uint { Init = 1, Exec = 2 }

public enum MountKind : uint { Normal = 0, BindDirectory = 1, BindFile = 2 }

public enum SeccompTiming : uint { Early = 0, Late = 1 }

public enum HookPhase : uint { CreateContainer = 1, StartContainer = 2 }
