//! Operations and leases: which replica launches and watches each operation, and letting
//! go of every claim when this process takes the database over.

use super::Pg;
use crate::store::{Lease, OperationRow, StoreError, rows, sql};

impl Pg {
    pub(in crate::store) async fn release_all_leases(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::RELEASE_OUTBOX_LEASES)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::RELEASE_OPERATION_LEASES)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::store) async fn claim_operations(
        &self,
        lease: Lease,
    ) -> Result<Vec<OperationRow>, StoreError> {
        sqlx::query(sql::CLAIM_OPERATIONS)
            .bind(lease.token)
            .bind(lease.until)
            .bind(lease.now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| rows::operation(r, true))
            .collect()
    }

    pub(in crate::store) async fn release_operations(
        &self,
        token: &str,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::RELEASE_OPERATIONS)
            .bind(token)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub(in crate::store) async fn unfinished_operations(
        &self,
    ) -> Result<Vec<OperationRow>, StoreError> {
        sqlx::query(sql::UNFINISHED_OPERATIONS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| rows::operation(r, false))
            .collect()
    }
}
