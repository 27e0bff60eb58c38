using System.Buffers.Binary;
using System.Net;
using System.Text;
using Vessel.Linux;

namespace Vessel.Network.Netlink;

/// <summary>A link as RTM_GETLINK reports it.</summary>
public sealed record LinkInfo(int Index, string Name, string? Kind, int Master, bool Up, byte[]? Mac);

/// <summary>An IPv4 route of the main table (what subnet selection must not clash with).</summary>
public sealed record RouteInfo(Cidr Destination, IPAddress? Gateway, int OutIndex);

/// <summary>A small NETLINK_ROUTE client: links (bridge, veth, up/down, master, rename, netns moves, delete),
/// IPv4 addresses and routes. One socket, bound to the network namespace it was opened in (see
/// <see cref="OpenIn"/>). Requests are synchronous and acknowledged; a kernel error becomes a
/// <see cref="LinuxException"/> with the errno and, when the kernel gives one, its extended-ack text.
/// Not thread-safe: one caller at a time (the engine serialises network changes).</summary>
public sealed unsafe class RtNetlink : IDisposable
{
    private const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22,
        RTM_NEWROUTE = 24, RTM_GETROUTE = 26;
    private const ushort NLM_F_REQUEST = 1, NLM_F_ACK = 4, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400, NLM_F_DUMP = 0x300, NLM_F_REPLACE = 0x100;
    private const ushort NLMSG_ERROR = 2, NLMSG_DONE = 3, NLM_F_ACK_TLVS = 0x200;
    private const ushort IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_MASTER = 10, IFLA_PROTINFO = 12, IFLA_LINKINFO = 18,
        IFLA_NET_NS_PID = 19, IFLA_NET_NS_FD = 28, IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, VETH_INFO_PEER = 1, NLA_F_NESTED = 0x8000,
        IFLA_BRPORT_MODE = 4;
    private const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_BROADCAST = 4;
    private const ushort RTA_DST = 1, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_TABLE = 15;
    private const byte AF_UNSPEC = 0, AF_INET = 2, AF_BRIDGE = 7, RT_TABLE_MAIN = 254, RTPROT_BOOT = 3, RT_SCOPE_UNIVERSE = 0, RTN_UNICAST = 1;
    private const uint IFF_UP = 1;
    public const int ENODEV = 19;

    private readonly SafeFd _fd;
    private uint _seq;
    private readonly byte[] _rx = new byte[1 << 16];

    private RtNetlink(SafeFd fd) => _fd = fd;

    /// <summary>A socket in the calling thread's network namespace.</summary>
    public static RtNetlink Open()
    {
        var fd = new SafeFd(Errno.Check(NetInterop.Socket(NetInterop.AF_NETLINK, NetInterop.SOCK_RAW | NetInterop.SOCK_CLOEXEC, NetInterop.NETLINK_ROUTE), "socket(NETLINK_ROUTE)"));
        int one = 1;
        NetInterop.SetSockOpt(fd.Fd, NetInterop.SOL_NETLINK, NetInterop.NETLINK_EXT_ACK, &one, 4); // best effort: error texts
        NetInterop.SetSockOpt(fd.Fd, NetInterop.SOL_NETLINK, NetInterop.NETLINK_CAP_ACK, &one, 4);  // acks without the request echoed
        return new RtNetlink(fd);
    }

    /// <summary>A socket in another network namespace (an fd of /proc/PID/ns/net). A netlink socket stays bound to
    /// the namespace it was created in, so a short-lived dedicated thread enters the namespace, opens the socket
    /// and goes back; no other code ever runs on that thread, and no thread-pool thread changes namespace. If
    /// going back fails the thread just ends (it is never reused).</summary>
    public static RtNetlink OpenIn(SafeFd netns)
    {
        RtNetlink? result = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using SafeFd home = SafeFd.OpenReadOnly("/proc/thread-self/ns/net");
                Errno.Check(NetInterop.SetNs(netns.Fd, NetInterop.CLONE_NEWNET), "setns(net)");
                try { result = Open(); }
                finally { Errno.Check(NetInterop.SetNs(home.Fd, NetInterop.CLONE_NEWNET), "setns(net) back"); }
            }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "vessel-netns" };
        thread.Start();
        thread.Join();
        if (error is not null) { result?.Dispose(); throw error; }
        return result!;
    }

    // ---- links -------------------------------------------------------------------------------------------

    public IReadOnlyList<LinkInfo> Links()
    {
        var list = new List<LinkInfo>();
        var m = new NetlinkMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP).IfInfo();
        Dump(m, "list links", (type, body) =>
        {
            if (type != RTM_NEWLINK || body.Length < 16) return;
            list.Add(ParseLink(body));
        });
        return list;
    }

    private static LinkInfo ParseLink(ReadOnlySpan<byte> body)
    {
        int index = BinaryPrimitives.ReadInt32LittleEndian(body[4..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(body[8..]);
        var attrs = new NetlinkAttrs(body[16..]);
        string? kind = null;
        if (attrs.TryGet(IFLA_LINKINFO, out var info)) kind = new NetlinkAttrs(info).String(IFLA_INFO_KIND);
        return new LinkInfo(index, attrs.String(IFLA_IFNAME) ?? "", kind, (int)(attrs.U32(IFLA_MASTER) ?? 0), (flags & IFF_UP) != 0, attrs.Bytes(IFLA_ADDRESS));
    }

    /// <summary>The link named <paramref name="name"/>, or null.</summary>
    public LinkInfo? Link(string name)
    {
        LinkInfo? found = null;
        var m = new NetlinkMessage(RTM_GETLINK, NLM_F_REQUEST).IfInfo().Attr(IFLA_IFNAME, name);
        try
        {
            Request(m, "get link", name, (type, body) => { if (type == RTM_NEWLINK && body.Length >= 16) found = ParseLink(body); });
        }
        catch (LinuxException e) when (e.ErrorNumber == ENODEV) { return null; }
        return found;
    }

    public int Index(string name) => Link(name)?.Index ?? throw Errno.Exception(ENODEV, "find link", name);

    public void CreateBridge(string name)
    {
        var m = new NetlinkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).IfInfo().Attr(IFLA_IFNAME, name);
        int li = m.Begin(IFLA_LINKINFO | NLA_F_NESTED);
        m.Attr(IFLA_INFO_KIND, "bridge");
        m.End(li);
        Request(m, "create bridge", name);
    }

    /// <summary>A veth pair: <paramref name="name"/> here and <paramref name="peer"/> created directly inside the
    /// namespace <paramref name="peerNetns"/> (IFLA_NET_NS_FD), or here when null.</summary>
    public void CreateVeth(string name, string peer, SafeFd? peerNetns = null, byte[]? peerMac = null, int mtu = 0)
    {
        var m = new NetlinkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).IfInfo().Attr(IFLA_IFNAME, name);
        if (mtu > 0) m.Attr(IFLA_MTU, (uint)mtu);
        int li = m.Begin(IFLA_LINKINFO | NLA_F_NESTED);
        m.Attr(IFLA_INFO_KIND, "veth");
        int data = m.Begin(IFLA_INFO_DATA | NLA_F_NESTED);
        int p = m.Begin(VETH_INFO_PEER | NLA_F_NESTED);
        m.IfInfo().Attr(IFLA_IFNAME, peer);
        if (mtu > 0) m.Attr(IFLA_MTU, (uint)mtu);
        if (peerMac is not null) m.Attr(IFLA_ADDRESS, peerMac);
        if (peerNetns is not null) m.Attr(IFLA_NET_NS_FD, (uint)peerNetns.Fd);
        m.End(p).End(data).End(li);
        Request(m, "create veth", name);
    }

    private void SetLink(int index, string what, Action<NetlinkMessage> attrs, uint flags = 0, uint change = 0)
    {
        var m = new NetlinkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK).IfInfo(AF_UNSPEC, index, flags, change);
        attrs(m);
        Request(m, what, $"#{index}");
    }

    public void SetUp(int index, bool up = true) => SetLink(index, up ? "set link up" : "set link down", _ => { }, up ? IFF_UP : 0, IFF_UP);

    public void SetMaster(int index, int master) => SetLink(index, "set master", m => m.Attr(IFLA_MASTER, (uint)master));

    public void Rename(int index, string name) => SetLink(index, "rename link", m => m.Attr(IFLA_IFNAME, name));

    public void SetMac(int index, byte[] mac) => SetLink(index, "set mac address", m => m.Attr(IFLA_ADDRESS, mac));

    public void SetMtu(int index, int mtu) => SetLink(index, "set mtu", m => m.Attr(IFLA_MTU, (uint)mtu));

    /// <summary>Moves a link into the network namespace of <paramref name="pid"/>.</summary>
    public void MoveToPid(int index, int pid) => SetLink(index, "move link to netns", m => m.Attr(IFLA_NET_NS_PID, (uint)pid));

    /// <summary>Moves a link into the network namespace <paramref name="netns"/> (an fd of /proc/PID/ns/net or a bind mount).</summary>
    public void MoveToNetns(int index, SafeFd netns) => SetLink(index, "move link to netns", m => m.Attr(IFLA_NET_NS_FD, (uint)netns.Fd));

    /// <summary>Hairpin mode on a bridge port: frames may go back out of the port they came in on (a container
    /// reaching itself through a published port).</summary>
    public void SetHairpin(int index, bool on)
    {
        var m = new NetlinkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK).IfInfo(AF_BRIDGE, index);
        int pi = m.Begin(IFLA_PROTINFO | NLA_F_NESTED);
        m.Attr(IFLA_BRPORT_MODE, on ? (byte)1 : (byte)0);
        m.End(pi);
        Request(m, "set hairpin", $"#{index}");
    }

    /// <summary>Deletes a link; false if there was none.</summary>
    public bool Delete(string name)
    {
        var m = new NetlinkMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK).IfInfo().Attr(IFLA_IFNAME, name);
        try { Request(m, "delete link", name); return true; }
        catch (LinuxException e) when (e.ErrorNumber == ENODEV) { return false; }
    }

    // ---- addresses and routes ----------------------------------------------------------------------------

    public void AddAddress(int index, IPAddress address, int prefix)
    {
        byte[] a = address.GetAddressBytes();
        var m = new NetlinkMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
            .IfAddr(AF_INET, (byte)prefix, RT_SCOPE_UNIVERSE, index).Attr(IFA_LOCAL, a).Attr(IFA_ADDRESS, a);
        if (prefix < 31) m.Attr(IFA_BROADCAST, new Cidr(address, prefix).Broadcast.GetAddressBytes());
        Request(m, "add address", $"{address}/{prefix}");
    }

    public void DeleteAddress(int index, IPAddress address, int prefix)
    {
        byte[] a = address.GetAddressBytes();
        var m = new NetlinkMessage(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK).IfAddr(AF_INET, (byte)prefix, RT_SCOPE_UNIVERSE, index).Attr(IFA_LOCAL, a);
        Request(m, "delete address", $"{address}/{prefix}");
    }

    /// <summary>IPv4 addresses: (link index, address, prefix).</summary>
    public IReadOnlyList<(int Index, IPAddress Address, int Prefix)> Addresses()
    {
        var list = new List<(int, IPAddress, int)>();
        var m = new NetlinkMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP).IfAddr(AF_INET, 0, 0, 0);
        Dump(m, "list addresses", (type, body) =>
        {
            if (type != RTM_NEWADDR || body.Length < 8 || body[0] != AF_INET) return;
            var attrs = new NetlinkAttrs(body[8..]);
            byte[]? a = attrs.Bytes(IFA_LOCAL) ?? attrs.Bytes(IFA_ADDRESS);
            if (a is { Length: 4 }) list.Add((BinaryPrimitives.ReadInt32LittleEndian(body[4..]), new IPAddress(a), body[1]));
        });
        return list;
    }

    /// <summary>A route in the main table: to <paramref name="destination"/> (null: default) via <paramref name="gateway"/>.</summary>
    public void AddRoute(Cidr? destination, IPAddress gateway, int outIndex = 0)
    {
        var m = new NetlinkMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
            .Rt(AF_INET, (byte)(destination?.Prefix ?? 0), RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST);
        if (destination is { } d) m.Attr(RTA_DST, d.Network.GetAddressBytes());
        m.Attr(RTA_GATEWAY, gateway.GetAddressBytes());
        if (outIndex > 0) m.Attr(RTA_OIF, (uint)outIndex);
        Request(m, "add route", destination?.ToString() ?? "default");
    }

    /// <summary>IPv4 routes of the main table.</summary>
    public IReadOnlyList<RouteInfo> Routes()
    {
        var list = new List<RouteInfo>();
        var m = new NetlinkMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP).Rt(AF_INET, 0, 0, 0, 0, 0);
        Dump(m, "list routes", (type, body) =>
        {
            if (type != 24 || body.Length < 12 || body[0] != AF_INET) return;
            var attrs = new NetlinkAttrs(body[12..]);
            uint table = attrs.U32(RTA_TABLE) ?? body[4];
            if (table != RT_TABLE_MAIN) return;
            byte[]? dst = attrs.Bytes(RTA_DST);
            var d = dst is { Length: 4 } ? new Cidr(new IPAddress(dst), body[1]) : new Cidr(IPAddress.Any, 0);
            byte[]? gw = attrs.Bytes(RTA_GATEWAY);
            list.Add(new RouteInfo(d, gw is { Length: 4 } ? new IPAddress(gw) : null, (int)(attrs.U32(RTA_OIF) ?? 0)));
        });
        return list;
    }

    // ---- transport ---------------------------------------------------------------------------------------

    private void Send(NetlinkMessage m, uint seq)
    {
        var data = m.Finish(seq);
        fixed (byte* p = data)
        {
            nint n;
            while ((n = NetInterop.Send(_fd.Fd, p, data.Length, 0)) < 0 && Errno.Last == Errno.EINTR) { }
            Errno.Check(n, "send(netlink)");
        }
    }

    private delegate void Handler(ushort type, ReadOnlySpan<byte> body);

    /// <summary>Sends and reads until the ack (or error) for this sequence number.</summary>
    private void Request(NetlinkMessage m, string what, string? subject, Handler? onMessage = null)
    {
        uint seq = ++_seq;
        Send(m, seq);
        Receive(seq, what, subject, onMessage, dump: false);
    }

    private void Dump(NetlinkMessage m, string what, Handler onMessage)
    {
        uint seq = ++_seq;
        Send(m, seq);
        Receive(seq, what, null, onMessage, dump: true);
    }

    private void Receive(uint seq, string what, string? subject, Handler? onMessage, bool dump)
    {
        while (true)
        {
            nint n;
            fixed (byte* p = _rx)
                while ((n = NetInterop.Recv(_fd.Fd, p, _rx.Length, 0)) < 0 && Errno.Last == Errno.EINTR) { }
            Errno.Check(n, "recv(netlink)");
            var buf = _rx.AsSpan(0, (int)n);
            bool answeredWithoutAck = false;
            while (buf.Length >= 16)
            {
                int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(buf);
                ushort type = BinaryPrimitives.ReadUInt16LittleEndian(buf[4..]);
                ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(buf[6..]);
                uint mseq = BinaryPrimitives.ReadUInt32LittleEndian(buf[8..]);
                if (len < 16 || len > buf.Length) break;
                var body = buf[16..len];
                if (mseq == seq)
                {
                    if (type == NLMSG_DONE) return;
                    if (type == NLMSG_ERROR)
                    {
                        int err = -BinaryPrimitives.ReadInt32LittleEndian(body);
                        if (err == 0) return; // the ack
                        string? text = null;
                        if ((flags & NLM_F_ACK_TLVS) != 0 && body.Length >= 20)
                        {
                            int origLen = (int)BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
                            // With NETLINK_CAP_ACK only the original header (16 bytes) is echoed.
                            int skip = 4 + Math.Min(NetlinkMessage.Align(origLen), 16);
                            if (skip <= body.Length) text = new NetlinkAttrs(body[skip..]).String(1); // NLMSGERR_ATTR_MSG
                        }
                        string op = text is { Length: > 0 } ? $"{what} ({text})" : what;
                        throw Errno.Exception(err, op, subject);
                    }
                    onMessage?.Invoke(type, body);
                    if (!dump && (flags & 2) == 0) answeredWithoutAck = true; // a GET answer: no ack follows
                }
                buf = buf[Math.Min(NetlinkMessage.Align(len), buf.Length)..];
            }
            if (answeredWithoutAck) return;
        }
    }

    public void Dispose() => _fd.Dispose();
}
