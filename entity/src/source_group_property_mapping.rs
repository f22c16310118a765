use sea_orm::entity::prelude::*;

/// Many-to-many link: a source's group property mappings.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "source_group_property_mappings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub property_mapping_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::source::Entity",
        from = "Column::SourceId",
        to = "super::source::Column::Uuid",
        on_delete = "Cascade"
    )]
    Source,
    #[sea_orm(
        belongs_to = "super::property_mapping::Entity",
        from = "Column::PropertyMappingId",
        to = "super::property_mapping::Column::Uuid",
        on_delete = "Cascade"
    )]
    PropertyMapping,
}

impl ActiveModelBehavior for ActiveModel {}
