using System.Text.Json;
using Vessel.Tests;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>`vessel build` end to end on the busybox image: RUN/COPY/ENV/ARG/CMD, the cache (hits, a miss after
/// one file changes, --no-cache, build args), .dockerignore, multi-stage into FROM scratch, failures that leave
/// nothing behind.</summary>
public sealed class BuildTests(BusyboxFixture f) : IClassFixture<BusyboxFixture>
{
    private DaemonFixture D => f.D;

    private string Context(string name, Dictionary<string, string> files)
    {
        string dir = D.Tmp.Sub("ctx-" + name + "-" + Guid.NewGuid().ToString("N")[..6]);
        foreach (var (path, content) in files)
        {
            string full = Path.Combine(dir, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, content);
        }
        return dir;
    }

    private static int Count(string text, string what) => text.Split('\n').Count(l => l.TrimEnd() == what || l.EndsWith(" " + what, StringComparison.Ordinal));

    [Fact]
    public void BuildsRunsAndCaches()
    {
        string ctx = Context("basic", new()
        {
            ["Containerfile"] = """
                FROM bb:1
                ARG WHO=world
                ENV GREETING=hello
                WORKDIR /app
                COPY greet.txt ./
                COPY data/ /app/data/
                RUN echo "$GREETING $WHO" > out.txt && cat greet.txt
                EXPOSE 8080 53/udp
                LABEL org.example.kind="test image"
                STOPSIGNAL SIGINT
                HEALTHCHECK --interval=5s CMD true
                CMD ["cat", "/app/out.txt"]
                """,
            ["greet.txt"] = "greetings from the context\n",
            ["data/keep.txt"] = "kept\n",
            ["data/secret.key"] = "never copied\n",
            ["junk.tmp"] = "ignored\n",
            [".dockerignore"] = "# comment\ndata/secret*\n*.tmp\n",
        });
        var first = D.Vessel("build", "-t", "built:1", ctx);
        Ok(first);
        Assert.Contains("RUN echo \"$GREETING $WHO\" > out.txt && cat greet.txt", first.Err);
        Assert.Contains("greetings from the context", first.Err); // the step's output
        Assert.Matches(@"#\d+ DONE \d+\.\ds", first.Err);

        var run = D.Vessel("run", "--rm", "built:1");
        Ok(run);
        Assert.Equal("hello world", run.Out.Trim());
        var ls = D.Vessel("run", "--rm", "built:1", "ls", "/app/data");
        Ok(ls);
        Assert.Equal(["keep.txt"], ls.OutLines);

        var inspect = D.Vessel("image", "inspect", "built:1");
        Ok(inspect);
        using (var doc = JsonDocument.Parse(inspect.Out))
        {
            JsonElement cfg = doc.RootElement[0].GetProperty("config");
            Assert.Equal("/app", cfg.GetProperty("WorkingDir").GetString());
            Assert.Contains("GREETING=hello", cfg.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
            Assert.DoesNotContain("WHO=world", cfg.GetProperty("Env").EnumerateArray().Select(e => e.GetString())); // ARGs stay out
            Assert.True(cfg.GetProperty("ExposedPorts").TryGetProperty("8080/tcp", out _));
            Assert.True(cfg.GetProperty("ExposedPorts").TryGetProperty("53/udp", out _));
            Assert.Equal("test image", cfg.GetProperty("Labels").GetProperty("org.example.kind").GetString());
            Assert.Equal("SIGINT", cfg.GetProperty("StopSignal").GetString());
            Assert.Equal(5_000_000_000, cfg.GetProperty("Healthcheck").GetProperty("Interval").GetInt64());
        }
        var history = D.Vessel("history", "--no-trunc", "built:1");
        Ok(history);
        Assert.Contains("RUN |1 WHO=world /bin/sh -c echo", history.Out);
        Assert.Contains("EXPOSE 8080/tcp 53/udp", history.Out);

        // Unchanged: every step cached, the very same image.
        var again = D.Vessel("build", "-t", "built:1", ctx);
        Ok(again);
        Assert.Equal(5, Count(again.Err, "CACHED")); // FROM, WORKDIR, COPY, COPY, RUN
        Assert.DoesNotContain("greetings from the context", again.Err);
        var id1 = D.Vessel("build", "-q", "-t", "built:1", ctx);
        Ok(id1);

        // A file that .dockerignore excludes changes nothing; one that is copied invalidates its step and those after.
        File.WriteAllText(Path.Combine(ctx, "junk.tmp"), "changed\n");
        File.WriteAllText(Path.Combine(ctx, "data", "secret.key"), "changed\n");
        Assert.Equal(id1.Out.Trim(), D.Vessel("build", "-q", "-t", "built:1", ctx).Out.Trim());
        File.WriteAllText(Path.Combine(ctx, "greet.txt"), "changed greeting\n");
        var changed = D.Vessel("build", "-t", "built:1", ctx);
        Ok(changed);
        Assert.Equal(2, Count(changed.Err, "CACHED")); // FROM, WORKDIR
        Assert.Contains("changed greeting", changed.Err);

        // A build arg in use is part of the RUN's key; --no-cache reruns everything.
        var arg = D.Vessel("build", "--build-arg", "WHO=vessel", "--build-arg", "UNUSED=1", "-t", "built:2", ctx);
        Ok(arg);
        Assert.Contains("[UNUSED] were not consumed", arg.Err);
        Assert.Equal("hello vessel", D.Vessel("run", "--rm", "built:2").Out.Trim());
        var nocache = D.Vessel("build", "--no-cache", "-t", "built:3", ctx);
        Ok(nocache);
        Assert.Equal(1, Count(nocache.Err, "CACHED")); // FROM an image that is here
        Ok(D.Vessel("rmi", "built:1", "built:2", "built:3"));
    }

    [Fact]
    public void OwnershipArchivesUsersAndOnbuild()
    {
        string ctx = Context("more", new()
        {
            ["Containerfile"] = """
                FROM bb:1
                RUN echo 'builder:x:4242:4343::/home/builder:/bin/sh' >> /etc/passwd && echo 'builders:x:4343:' >> /etc/group
                ADD files.tar.gz /opt/extracted/
                ADD files.tar.gz /opt/plain-copy.tgz.d/
                ADD --chown=builder:builders files.tar.gz /opt/owned-tar/
                COPY --chown=builder:builders --chmod=0640 sub/a.txt /opt/owned.txt
                COPY sub /opt/sub-contents
                USER builder
                RUN id -u > /tmp/uid && touch /tmp/made-by-builder
                USER root
                VOLUME /data
                ENTRYPOINT ["cat"]
                ONBUILD RUN echo triggered > /onbuild.txt
                """,
            ["sub/a.txt"] = "a\n",
            ["sub/deeper/b.txt"] = "b\n",
        });
        var tar = Binaries.Run("tar", ["-czf", Path.Combine(ctx, "files.tar.gz"), "-C", Path.Combine(ctx, "sub"), "."]);
        Ok(tar);
        var r = D.Vessel("build", "-t", "more:1", ctx);
        Ok(r);
        Assert.Contains("COPY --chown=builder:builders --chmod=0640 sub/a.txt /opt/owned.txt", r.Err);
        var ls = D.Vessel("run", "--rm", "--entrypoint", "sh", "more:1", "-c",
            "stat -c '%n %u:%g %a' /opt/owned.txt /opt/extracted/a.txt /opt/extracted/deeper/b.txt /opt/sub-contents/deeper/b.txt /tmp/made-by-builder " +
            "/opt/owned-tar /opt/owned-tar/deeper /opt/owned-tar/deeper/b.txt; cat /tmp/uid");
        Ok(ls);
        Assert.Equal([
            "/opt/owned.txt 4242:4343 640", "/opt/extracted/a.txt 0:0 644", "/opt/extracted/deeper/b.txt 0:0 644",
            "/opt/sub-contents/deeper/b.txt 0:0 644", "/tmp/made-by-builder 4242:4343 644",
            // ADD --chown owns what it extracts, as BuildKit (v0.23+) does.
            "/opt/owned-tar 4242:4343 755", "/opt/owned-tar/deeper 4242:4343 755", "/opt/owned-tar/deeper/b.txt 4242:4343 644", "4242"], ls.OutLines);
        // ENTRYPOINT without CMD in this file clears the base image's CMD ["sh"].
        Assert.Equal("a", D.Vessel("run", "--rm", "more:1", "/opt/owned.txt").Out.Trim());
        var inspect = D.Vessel("image", "inspect", "more:1");
        Assert.Contains("\"/data\"", inspect.Out);
        Assert.DoesNotContain("\"Cmd\"", inspect.Out);
        Assert.Contains("RUN echo triggered", inspect.Out);

        // An image built FROM it runs the trigger first and does not inherit it.
        string child = Context("child", new() { ["Containerfile"] = "FROM more:1\nRUN cat /onbuild.txt\n" });
        var c = D.Vessel("build", "-t", "child:1", child);
        Ok(c);
        Assert.Contains("[2/3] RUN echo triggered > /onbuild.txt", c.Err);
        Assert.Contains(" triggered", c.Err);
        Assert.DoesNotContain("OnBuild", D.Vessel("image", "inspect", "child:1").Out);
        Ok(D.Vessel("rmi", "more:1", "child:1"));
    }

    [Fact]
    public void MultiStageIntoScratchAndTarget()
    {
        string ctx = Context("multi", new()
        {
            ["Dockerfile"] = """
                # syntax=docker/dockerfile:1
                ARG BASE=bb:1
                FROM ${BASE} AS build
                RUN mkdir -p /out && cp /bin/busybox /out/busybox && echo built in stage one > /out/msg
                RUN <<EOF
                echo heredoc line one >> /out/msg
                echo heredoc line two >> /out/msg
                EOF

                FROM scratch
                COPY --from=build /out/ /
                COPY <<EOF /note
                a note
                EOF
                ENTRYPOINT ["/busybox"]
                CMD ["cat", "/msg", "/note"]
                """,
        });
        Ok(D.Vessel("build", "-t", "multi:1", ctx));
        var run = D.Vessel("run", "--rm", "multi:1");
        Ok(run);
        Assert.Equal(["built in stage one", "heredoc line one", "heredoc line two", "a note"], run.OutLines);
        var ls = D.Vessel("run", "--rm", "multi:1", "ls", "/");
        Ok(ls);
        Assert.DoesNotContain("bin", ls.OutLines); // nothing of the busybox stage but what was copied

        var target = D.Vessel("build", "--target", "build", "-t", "multi:build", ctx);
        Ok(target);
        Assert.DoesNotContain("FROM scratch", target.Err);
        Assert.Equal("built in stage one", D.Vessel("run", "--rm", "multi:build", "head", "-1", "/out/msg").Out.Trim());
        Ok(D.Vessel("rmi", "multi:1", "multi:build"));
    }

    [Fact]
    public void FailuresLeaveNothingBehind()
    {
        string ctx = Context("fail", new()
        {
            ["Containerfile"] = "FROM bb:1\nRUN echo about to fail && touch /half-made\nRUN echo failing now; exit 3\n",
        });
        var r = D.Vessel("build", "-t", "failed:1", ctx);
        Assert.Equal(1, r.Code);
        Assert.Contains("echo failing now; exit 3", r.Err);
        Assert.Contains("exit code: 3", r.Err);
        Assert.Contains("Containerfile:3:1", r.Err);
        Assert.DoesNotContain("failed", D.Vessel("images").Out);
        AssertClean();

        string bad = Context("syntax", new() { ["Containerfile"] = "FROM bb:1\n\nBOGUS thing\n" });
        var syntax = D.Vessel("build", bad);
        Assert.Equal(1, syntax.Code);
        Assert.Contains("Containerfile:3:1: unknown instruction: BOGUS", syntax.Err);
        string sig = Context("signal", new() { ["Containerfile"] = "FROM bb:1\nSTOPSIGNAL SIGBOGUS\n" });
        Assert.Contains("Containerfile:2:1: STOPSIGNAL: invalid signal: SIGBOGUS", D.Vessel("build", sig).Err);
        string blank = Context("blank", new() { ["Containerfile"] = "FROM ${NOPE}\n" });
        Assert.Contains("Containerfile:1:1: base name (${NOPE}) should not be blank", D.Vessel("build", blank).Err);

        string missing = Context("missing", new() { ["Containerfile"] = "FROM bb:1\nCOPY nope.txt /\n" });
        var m = D.Vessel("build", missing);
        Assert.Equal(1, m.Code);
        Assert.Contains("nope.txt: not found in the build context", m.Err);

        var badTag = D.Vessel("build", "-t", "Bad:Tag!", missing);
        Assert.Equal(125, badTag.Code);
        Assert.Contains("invalid tag \"Bad:Tag!\"", badTag.Err);

        string outside = Context("outside", new() { ["Containerfile"] = "FROM bb:1\nCOPY ../../etc/passwd /\n" });
        Assert.Contains("outside the build context", D.Vessel("build", outside).Err);
        AssertClean();
    }

    [Fact]
    public void NetworkNoneEmptyStepsAndAddArchives()
    {
        string ctx = Context("archives", new()
        {
            ["Containerfile"] = """
                FROM bb:1
                RUN echo this step changes nothing
                RUN <<EOF
                #!/bin/cat
                echo run-by-sh
                EOF
                RUN --network=none ip -o addr show lo | grep -q 'inet 127.0.0.1' && ip -o link | grep -vc ': lo:' || true
                ADD files.tar.xz /xz/
                ADD files.tar.bz2 /bz/
                ADD note.gz /gz/
                STOPSIGNAL rtmin+3
                """,
            ["sub/a.txt"] = "a\n",
        });
        string sub = Path.Combine(ctx, "sub");
        Ok(Binaries.Run("tar", ["-cJf", Path.Combine(ctx, "files.tar.xz"), "-C", sub, "."]));
        Ok(Binaries.Run("tar", ["-cjf", Path.Combine(ctx, "files.tar.bz2"), "-C", sub, "."]));
        Ok(Binaries.Run("sh", ["-c", $"echo gzipped text | gzip > '{ctx}/note.gz'"]));
        var r = D.Vessel("build", "-t", "archives:1", ctx);
        Ok(r);
        // A here-document with #! is a script file that RUN executes, as BuildKit (cat prints it; sh would run it).
        Assert.Matches(@"#\d+ [\d.]+ echo run-by-sh\n", r.Err);
        // --network=none: a namespace of its own with loopback up and nothing else.
        Assert.Matches(@"#\d+ [\d.]+ 0\n", r.Err);
        var ls = D.Vessel("run", "--rm", "archives:1", "sh", "-c", "cat /xz/a.txt /bz/a.txt; ls /gz");
        Ok(ls);
        Assert.Equal(["a", "a", "note.gz"], ls.OutLines); // bzip2 and xz tars extracted; a gzipped non-tar copied as is
        using var doc = JsonDocument.Parse(D.Vessel("image", "inspect", "archives:1").Out);
        // The RUNs changed nothing (the mount points of /etc/hosts and friends are no change): no layers of theirs.
        Assert.Equal(4, doc.RootElement[0].GetProperty("layers").GetArrayLength());
        Assert.Equal("rtmin+3", doc.RootElement[0].GetProperty("config").GetProperty("StopSignal").GetString());
        Ok(D.Vessel("rmi", "archives:1"));
    }

    [Fact]
    public void PushedAndPulledBackIntact()
    {
        using var registry = new RegistryProcess();
        string ctx = Context("push", new()
        {
            ["Containerfile"] = """
                FROM bb:1 AS build
                RUN echo compiled > /artifact
                FROM bb:1
                COPY --from=build /artifact /artifact
                COPY --from=bb:1 /etc/group /group-from-an-image
                ENV MODE=dev
                ENV MODE=prod WAS=$MODE
                USER 1000:1000
                WORKDIR /srv
                EXPOSE 8080
                LABEL org.example.k=v
                ENTRYPOINT ["cat"]
                CMD ["/artifact"]
                """,
        });
        string name = registry.Host + "/built/app:1";
        Ok(D.Vessel("build", "-t", name, ctx));
        string id = ImageId(name);
        Ok(D.Vessel("push", name));
        Ok(D.Vessel("rmi", name));
        Ok(D.Vessel("pull", name));
        Assert.Equal(id, ImageId(name)); // the very same config (history included) and layers
        Assert.Equal("compiled", D.Vessel("run", "--rm", name).Out.Trim());
        // WORKDIR made the directory, owned by the USER then in effect (as BuildKit), though no RUN followed.
        Assert.Equal("1000:1000 755 /srv", D.Vessel("run", "--rm", "--entrypoint", "sh", name, "-c", "stat -c '%u:%g %a' /srv && pwd").Out.ReplaceLineEndings(" ").Trim());
        using (var doc = JsonDocument.Parse(D.Vessel("image", "inspect", name).Out))
        {
            JsonElement cfg = doc.RootElement[0].GetProperty("config");
            Assert.Equal("1000:1000", cfg.GetProperty("User").GetString());
            Assert.Equal("/srv", cfg.GetProperty("WorkingDir").GetString());
            Assert.Contains("MODE=prod", cfg.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
            Assert.Contains("WAS=dev", cfg.GetProperty("Env").EnumerateArray().Select(e => e.GetString())); // as Docker
            Assert.Equal("v", cfg.GetProperty("Labels").GetProperty("org.example.k").GetString());
        }
        var history = D.Vessel("history", "--no-trunc", "--format", "json", name);
        Ok(history);
        var steps = history.OutLines.Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!)
            .Select(e => (By: e["createdBy"]!.GetValue<string>(), Empty: e["emptyLayer"]!.GetValue<bool>())).ToList();
        Assert.Contains(("COPY /artifact /artifact", false), steps); // as BuildKit: no --from in the history
        Assert.Contains(("ENTRYPOINT [\"cat\"]", true), steps);
        Assert.Contains(("EXPOSE 8080/tcp", true), steps);
        Assert.Contains(("WORKDIR /srv", false), steps);
        Assert.Contains(("COPY /etc/group /group-from-an-image", false), steps);
        Ok(D.Vessel("rmi", name));
    }

    private string ImageId(string name)
    {
        using var doc = JsonDocument.Parse(D.Vessel("image", "inspect", name).Out);
        return doc.RootElement[0].GetProperty("id").GetString()!;
    }

    /// <summary>No build directories, step containers, leases or mounts are left.</summary>
    private void AssertClean()
    {
        string builds = Path.Combine(D.Root, "builds");
        Assert.Empty(Directory.Exists(builds) ? Directory.EnumerateFileSystemEntries(builds) : []);
        string rt = Path.Combine(D.RunRoot, "build-runtime");
        Assert.Empty(Directory.Exists(rt) ? Directory.EnumerateDirectories(rt) : []);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(D.Root, "leases"), "build-*"));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(builds, StringComparison.Ordinal));
    }

    [Fact]
    public void ContainerignoreWinsOverDockerignore()
    {
        string ctx = Context("ignore", new()
        {
            ["Containerfile"] = "FROM bb:1\nCOPY . /ctx/\nCMD [\"ls\", \"-A\", \"/ctx\"]\n",
            [".containerignore"] = "secret.txt\n",
            [".dockerignore"] = "kept.txt\n",
            ["secret.txt"] = "x\n",
            ["kept.txt"] = "y\n",
        });
        var r = D.Vessel("build", "-t", "ignore:1", ctx);
        Ok(r);
        Assert.Contains("[internal] load .containerignore", r.Err);
        // As buildah: .containerignore is the ignore file when both are there; the other is just a file.
        Assert.Equal([".containerignore", ".dockerignore", "Containerfile", "kept.txt"], D.Vessel("run", "--rm", "ignore:1").OutLines);
        Ok(D.Vessel("rmi", "ignore:1"));
    }

    [Fact]
    public void ContainerfileFromStdinAndFileFlag()
    {
        string ctx = Context("stdin", new() { ["hello.txt"] = "from the context\n", ["sub/Other.containerfile"] = "FROM bb:1\nCOPY hello.txt /\nCMD [\"cat\", \"/hello.txt\"]\n" });
        var viaF = D.Vessel("build", "-f", Path.Combine(ctx, "sub", "Other.containerfile"), "-t", "stdin:1", ctx);
        Ok(viaF);
        Assert.Equal("from the context", D.Vessel("run", "--rm", "stdin:1").Out.Trim());
        var piped = Binaries.Run("sh", ["-c", $"printf 'FROM bb:1\\nCOPY . /ctx/\\nCMD [\"ls\", \"/ctx\"]\\n' | '{Binaries.Vessel}' -H '{D.Host}' build -q -f - -t stdin:2 '{ctx}'"]);
        Ok(piped);
        var ls = D.Vessel("run", "--rm", "stdin:2");
        Ok(ls);
        Assert.Equal(["hello.txt", "sub"], ls.OutLines); // the piped Containerfile is not part of the context
        Ok(D.Vessel("rmi", "stdin:1", "stdin:2"));
    }
}
