//! Operations and leases: which replica launches and watches each operation, and letting
//! go of every claim when this process takes the database over.

use rusqlite::params;

use super::Lite;
use super::rows::{all, exec};
use crate::store::{Lease, OperationRow, StoreError, rows, sql};

impl Lite {
    pub(in crate::store) async fn release_all_leases(&self) -> Result<(), StoreError> {
        self.write(|c| {
            exec(c, sql::RELEASE_OUTBOX_LEASES, [])?;
            exec(c, sql::RELEASE_OPERATION_LEASES, [])?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn claim_operations(
        &self,
        lease: Lease,
    ) -> Result<Vec<OperationRow>, StoreError> {
        self.write(move |c| {
            all(
                c,
                sql::CLAIM_OPERATIONS,
                params![lease.token, lease.until, lease.now],
                |r| rows::operation(r, true),
            )
        })
        .await
    }

    pub(in crate::store) async fn release_operations(
        &self,
        token: &str,
    ) -> Result<u64, StoreError> {
        let token = token.to_owned();
        self.write(move |c| Ok(exec(c, sql::RELEASE_OPERATIONS, [token])? as u64))
            .await
    }

    pub(in crate::store) fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        self.read(|c| {
            all(c, sql::UNFINISHED_OPERATIONS, [], |r| {
                rows::operation(r, false)
            })
        })
    }
}
