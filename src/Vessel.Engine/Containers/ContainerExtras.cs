using Vessel.Api;
using Vessel.Engine.Volumes;
using Vessel.Images.Oci;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>The create options beyond the first slice, applied to the spec <see cref="ContainerSpec.Build"/> made:
/// mounts (volumes, binds, tmpfs), --init, --security-opt; and the checks of --restart, --stop-signal and the health
/// check, so that a bad value fails create with one line.</summary>
public static class ContainerExtras
{
    /// <summary>Where --init's tini appears in the container (docker's path for its docker-init).</summary>
    public const string InitPath = "/sbin/docker-init";
    /// <summary>Debian's statically linked tini (package tini): runs in any image, whatever its libc.</summary>
    public const string TiniStatic = "/usr/bin/tini-static";

    /// <summary>Refuses what docker refuses before anything is created.</summary>
    public static void Validate(ContainerCreateRequest req, ContainerConfig image)
    {
        var policy = RestartPolicy.Parse(req.Restart);
        if (req.AutoRemove && !policy.IsNo) throw EngineException.Invalid("conflicting options: --restart and --rm (a container removed when it exits cannot be restarted)");
        if (!string.IsNullOrEmpty(req.StopSignal)) ContainerService.ParseSignal(req.StopSignal);
        if (req.StopTimeout is < -1) throw EngineException.Invalid($"invalid --stop-timeout {req.StopTimeout}: use seconds, or -1 to wait forever");
        HealthSettings.Resolve(req.Healthcheck, image.Healthcheck);
        SecurityOptions.Parse(req.SecurityOpt);
        LogSettings.Of(req);
        if (req.Init && !File.Exists(TiniStatic)) throw EngineException.Invalid($"--init needs {TiniStatic} on the daemon's host (Debian package tini)");
    }

    public static void Apply(RuntimeSpec spec, ContainerCreateRequest req, IReadOnlyList<ContainerMountPoint> mounts)
    {
        var user = ContainerMounts.Spec(mounts).ToList();
        // A user mount replaces a default one at the same place (e.g. -v …:/dev/shm), as docker's do.
        spec.Mounts = [.. (spec.Mounts ?? []).Where(m => user.All(u => u.Destination != m.Destination)), .. user];
        if (req.Init)
        {
            spec.Mounts.Add(new MountSpec { Destination = InitPath, Type = "bind", Source = TiniStatic, Options = ["bind", "ro", "nosuid", "nodev"] });
            spec.Process!.Args = [InitPath, "--", .. spec.Process.Args ?? []];
        }
        var sec = SecurityOptions.Parse(req.SecurityOpt);
        if (sec.NoNewPrivileges) spec.Process!.NoNewPrivileges = true;
        if (!req.Privileged && spec.Linux is not null)
        {
            if (sec.SeccompUnconfined) spec.Linux.Seccomp = null;
            else if (sec.SeccompProfile is not null)
                spec.Linux.Seccomp = SecurityOptions.FromDockerProfile(sec.SeccompProfile, spec.Process!.Capabilities?.Bounding ?? []);
            if (sec.SystemPathsUnconfined) { spec.Linux.MaskedPaths = null; spec.Linux.ReadonlyPaths = null; }
        }
    }
}
