"""Operations for real AWS accounts: preflight doctor, reference publishing, run report, tiering."""
