"""`python -m localdigest`: the same CLI where the console script is not on PATH (pipx, Ray nodes)."""

from localdigest.cli import main

if __name__ == "__main__":
    main()
