"""``playground users``: accounts from the command line (add, list, disable, enable, grant, revoke, role,
password). The password comes from a prompt (twice) or ``--password-stdin``, never an argument."""

from __future__ import annotations

import sys

from playground.errors import PlaygroundError

ROLE_CHOICES = ("annotator", "reviewer", "admin")  # playground.store_schema.ROLES, without importing it


def add_users_parser(commands) -> None:
    users = commands.add_parser(
        "users",
        help="accounts for the app: add, list, disable, enable, grant or revoke a project",
        description="With no action: list the accounts. Once an account exists, the app asks everyone "
        "to sign in; an annotator works only on the projects (queues) they are granted.",
    )
    actions = users.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="a new account (password from stdin or prompted, never an argument)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLE_CHOICES, default="annotator", help="default annotator")
    password_option(add)
    actions.add_parser("list", help="name, role, enabled, projects")
    for action, text in (("disable", "stop an account signing in"), ("enable", "let it sign in again")):
        actions.add_parser(action, help=text).add_argument("name")
    role = actions.add_parser("role", help="give an account another role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLE_CHOICES)
    password = actions.add_parser("password", help="set an account's password")
    password.add_argument("name")
    password_option(password)
    for action, text in (("grant", "put an account on a project"), ("revoke", "take it off a project")):
        membership = actions.add_parser(action, help=text)
        membership.add_argument("name")
        membership.add_argument("queue", help="the project's name (its annotation queue)")
    users.set_defaults(handler=cmd_users)


def password_option(parser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (else prompted twice in a terminal)",
    )


def cmd_users(args) -> int:
    from playground.accounts import Accounts

    accounts = Accounts()
    name = getattr(args, "name", None)
    if args.action == "add":
        user = accounts.add(name, read_password(args.password_stdin), args.role)
        print(f"added {user.name} ({user.role})")
    elif args.action in ("disable", "enable"):
        changed = getattr(accounts, args.action)(name)
        print(f"{name} {args.action}d" if changed else f"{name} was {args.action}d already")
    elif args.action == "role":
        changed = accounts.set_role(name, args.role)
        print(f"{name} is {'now' if changed else 'already'} {args.role}")
    elif args.action == "password":
        accounts.set_password(name, read_password(args.password_stdin))
        print(f"password of {name} changed")
    elif args.action in ("grant", "revoke"):
        changed = getattr(accounts, args.action)(name, args.queue)
        where = "on" if args.action == "grant" else "off"
        print(f"{name} is {'now' if changed else 'already'} {where} {args.queue}")
    else:
        print_users(accounts.list())
    return 0


def print_users(users) -> None:
    if not users:
        print(
            "no accounts: the app is open to anyone on this machine (localhost only); "
            "add one with `playground users add NAME --role admin`"
        )
    for user in users:
        state = "enabled" if user.enabled else "disabled"
        projects = "all" if user.can_review else ", ".join(user.queues) or "-"
        print(f"{user.name:<24} {user.role:<10} {state:<9} {projects}")


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or typed twice at a terminal prompt."""
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise PlaygroundError("give the password on stdin with --password-stdin, or run in a terminal")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise PlaygroundError("the two passwords differ; nothing was changed")
    return first
