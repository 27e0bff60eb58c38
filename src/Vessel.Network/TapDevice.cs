using System.Runtime.InteropServices;
using System.Text;
using Vessel.Linux;

namespace Vessel.Network;

/// <summary>Persistent tap devices for VMs' NICs. The daemon makes the device (so it can be put on a bridge before
/// QEMU runs and is named for the leak check), QEMU opens it by name (<c>-netdev tap,ifname=…</c>) and the daemon
/// deletes it when the VM stops. Created through /dev/net/tun (TUNSETIFF + TUNSETPERSIST): rtnetlink refuses to make
/// tun/tap devices. IFF_VNET_HDR up front, as QEMU asks for it for virtio-net and vhost-net.</summary>
public static partial class TapDevice
{
    private const nuint TUNSETIFF = 0x400454ca, TUNSETPERSIST = 0x400454cb;
    private const short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
    private const int O_RDWR = 2, O_CLOEXEC = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int Ioctl(int fd, nuint request, void* arg);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, nint arg);

    /// <summary>Makes a persistent tap device <paramref name="name"/> (at most 15 bytes), down and on no bridge.</summary>
    public static unsafe void Create(string name)
    {
        byte[] n = Encoding.ASCII.GetBytes(name);
        if (n.Length is 0 or > 15) throw new ArgumentException($"tap name \"{name}\" must have 1 to 15 characters");
        int fd = Errno.Check(Open("/dev/net/tun", O_RDWR | O_CLOEXEC), "open", "/dev/net/tun");
        try
        {
            byte* ifr = stackalloc byte[40]; // struct ifreq: the name, then the flags
            new Span<byte>(ifr, 40).Clear();
            n.CopyTo(new Span<byte>(ifr, 16));
            *(short*)(ifr + 16) = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
            if (Ioctl(fd, TUNSETIFF, ifr) != 0) throw Errno.Exception(Errno.Last, "create tap device", name);
            if (Ioctl(fd, TUNSETPERSIST, 1) != 0) throw Errno.Exception(Errno.Last, "make tap device persistent", name);
        }
        finally { Close(fd); }
    }

    /// <summary>Deletes the device if it exists (true when it did).</summary>
    public static bool Delete(string name)
    {
        using var nl = Netlink.RtNetlink.Open();
        return nl.Delete(name);
    }

    /// <summary>vhost-net (the kernel moving the NIC's packets, not QEMU's thread) can be used: /dev/vhost-net opens.</summary>
    public static bool VhostAvailable()
    {
        int fd = Open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
        if (fd < 0) return false;
        Close(fd);
        return true;
    }
}
