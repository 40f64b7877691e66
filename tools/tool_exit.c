/*
 * tool_exit.c - the `sluice` command's one mapping from an error code to
 * its exit status (sysexits(3)), and the messages that go with it.
 *
 * DESCRIPTION
 *   Every command ends a failed call with tool_exit_for(), directly or
 *   through tool_admin_error() (admin changes: prints the queue's detail
 *   first) or tool_spool_error() (a spool that does not open).  The table:
 *     65 data      a foreign, corrupt or newer spool; invalid input, a
 *                  duplicate, a change the record's state forbids
 *     66 no input  no such file, record or name
 *     71 OS error  out of memory
 *     75 temp fail the spool's map or the filesystem is full (nothing
 *                  was written: try again once there is space)
 *     77 no perm   -EACCES and -EPERM: permission is refused (the OS, or
 *                  the identity's role: authz.c exits 77 itself)
 *     70 software  OpenSSL failed, or dkim/ was called wrongly (DKIM_E_*)
 *     78 config    the audit trail needs audit_key, or has another; a
 *                  DKIM key file group or others may read (sluiced refuses
 *                  it), or one that is no usable key
 *     74 I/O       anything else
 *   tool_exit_create() is the same table for a file or directory being
 *   made (a DKIM key, its directories): any other -errno is 73, cannot
 *   create.
 *   -EPERM was 65 for admin changes and 77 elsewhere before issue 16; it
 *   is 77 everywhere (the queue reports what the account model forbids as
 *   -EINVAL).  `sluice dkim` mapped its own codes until then: a key
 *   that would not load for another -errno (a loop, a directory) was 78
 *   and is 74 like every other I/O error; a DKIM_E_CRYPTO loading one was
 *   78 and is 70 as in keygen.
 *
 * DIAGNOSTICS
 *   Messages go to stderr as "PROG: text".
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "dkim_sign.h"
#include "tool_admin.h"

int tool_exit_for(int err)
{
    switch (err) {
    case 0: return TOOL_OK;
    case QUEUE_EFOREIGN:
    case QUEUE_ECORRUPT:
    case QUEUE_ESCHEMA:
    case QUEUE_ESTATE:
    case -EINVAL:
    case -EEXIST: return TOOL_EX_DATAERR;
    case QUEUE_ENOTFOUND:
    case -ENOENT: return TOOL_EX_NOINPUT;
    case -EACCES:
    case -EPERM: return TOOL_EX_NOPERM;
    case QUEUE_EFULL:          /* map ceiling or filesystem (errors.c) */
    case -ENOSPC:
    case -EDQUOT: return TOOL_EX_TEMPFAIL;
    case -ENOMEM: return TOOL_EX_OSERR;
    case -ENOKEY:              /* the audit trail needs audit_key */
    case -EKEYREJECTED:
    case DKIM_E_KEYPERM:       /* a key sluiced would refuse */
    case DKIM_E_KEYPARSE:
    case DKIM_E_KEYTYPE:
    case DKIM_E_KEYSIZE:
    case DKIM_E_TOOBIG: return TOOL_EX_CONFIG;
    case DKIM_E_CRYPTO:
    case DKIM_E_ARG:
    case DKIM_E_MSG: return TOOL_EX_SOFTWARE;
    default: return TOOL_EX_IOERR;
    }
}

int tool_exit_create(int err)
{
    bool os = err < 0 && err >= -4095;  /* an -errno, not a module's code */
    if (os && err != -EACCES && err != -EPERM && err != -ENOMEM)
        return TOOL_EX_CANTCREAT;
    return tool_exit_for(err);
}

int tool_admin_error(const char *prog, int err)
{
    const char *d = queue_last_detail();
    fprintf(stderr, "%s: %s\n", prog, *d ? d : queue_strerror(err));
    return tool_exit_for(err);
}

int tool_spool_error(const char *prog, const char *dir, int err)
{
    const char *d = queue_last_detail();
    if (err == -EACCES || err == -EPERM)
        fprintf(stderr, "%s: %s: permission denied (uid %u may not open "
                "the spool: run sluice as a user who may, such as its "
                "owner)%s%s\n", prog, dir, (unsigned)geteuid(),
                *d ? "\n  " : "", d);
    else
        fprintf(stderr, "%s: %s: %s%s%s\n", prog, dir, queue_strerror(err),
                *d ? "\n  " : "", d);
    return tool_exit_for(err);
}
